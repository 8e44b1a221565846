# frozen_string_literal: true

# Which finished sessions still have to reach Tutor Quality (sent_at NULL until the API answered 202), and
# the API's reason for a session it refused (a mapping bug to fix; the session is held back until then).
class AddTutorQualityColumnsToTutoringSessions < ActiveRecord::Migration[7.1]
  def change
    add_column :tutoring_sessions, :tutor_quality_sent_at, :datetime
    add_column :tutoring_sessions, :tutor_quality_error, :text
    add_index :tutoring_sessions, :id, name: "index_tutoring_sessions_unsent_to_tutor_quality",
                                       where: "tutor_quality_sent_at IS NULL AND tutor_quality_error IS NULL"
  end
end
