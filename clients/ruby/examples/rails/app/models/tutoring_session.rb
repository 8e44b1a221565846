# frozen_string_literal: true

# app/models/tutoring_session.rb (the part that matters here): a session whose outcome is known, or that
# changed since, is marked unsent in the same transaction, and a job sends the unsent ones after the commit.
class TutoringSession < ApplicationRecord
  belongs_to :tutor, class_name: "User"
  belongs_to :student, class_name: "User"
  has_one :reschedule, dependent: :destroy # requested_by ("tutor"/"student"), reason, new_scheduled_at

  FINISHED = %w[completed no_show rescheduled].freeze
  SENT_FIELDS = %w[status scheduled_at ended_at duration_minutes subject tutor_id student_id].freeze

  scope :finished, -> { where(status: FINISHED) }
  scope :unsent_to_tutor_quality, -> { finished.where(tutor_quality_sent_at: nil, tutor_quality_error: nil) }

  before_save :mark_unsent_to_tutor_quality, if: :tutor_quality_fields_changed?
  after_commit :send_to_tutor_quality, on: %i[create update], if: :unsent_to_tutor_quality?

  private

  def tutor_quality_fields_changed?
    FINISHED.include?(status) && (changed & SENT_FIELDS).any?
  end

  def mark_unsent_to_tutor_quality
    self.tutor_quality_sent_at = nil
    self.tutor_quality_error = nil # an edit may have fixed what the API refused
  end

  def unsent_to_tutor_quality?
    FINISHED.include?(status) && tutor_quality_sent_at.nil? && tutor_quality_error.nil?
  end

  # After the commit, so the job never reads a session that rolled back or is not visible yet.
  def send_to_tutor_quality
    TutorQualitySyncJob.perform_later
  end
end
