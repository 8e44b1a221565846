# frozen_string_literal: true

# Sends every unsent finished session to Tutor Quality, 500 per request, oldest first.
#
# Two runs at once may send the same sessions twice: harmless, the API stores a session once per
# session_id and an identical re-post changes nothing. A session edited while its batch was in flight
# stays unsent (its updated_at is newer than the read), so the next run sends the new version.
class TutorQualitySyncJob < ApplicationJob
  queue_as :tutor_quality
  BATCH = 500

  # 429/503/timeouts were already retried inside the client (honouring Retry-After); try again later.
  retry_on TutorQuality::Unavailable, wait: :polynomially_longer, attempts: 10
  # 401/403 (a revoked or wrong key) raises: the job fails loudly and your error tracker sees it.

  def perform
    client = Rails.application.config.x.tutor_quality_client
    loop do
      read_at = Time.current
      batch = TutoringSession.unsent_to_tutor_quality.includes(:tutor, :student, :reschedule)
                             .order(:id).limit(BATCH).to_a
      break if batch.empty?

      accepted = send_batch(client, batch)
      TutoringSession.where(id: accepted.map(&:id)).where("updated_at <= ?", read_at)
                     .update_all(tutor_quality_sent_at: Time.current)
      break if batch.size < BATCH
    end
  end

  private

  # A 400 refuses the whole batch and names each bad record by its index: report it (a bug in
  # TutorQualityPayload, never retried as is), hold those sessions back with the reason, send the rest.
  def send_batch(client, batch)
    client.post_sessions(batch.map { |session| TutorQualityPayload.new(session).to_h })
    batch
  rescue TutorQuality::InvalidSessions => e
    Rails.error.report(e, context: { tutor_quality_errors: e.errors })
    reasons = e.errors.select { |error| error["index"] }.group_by { |error| error["index"] }
    raise if reasons.empty? # the body itself was refused: nothing to hold back, let the job fail

    reasons.each do |index, errors|
      batch[index].update_columns(tutor_quality_error: errors.map { |x| "#{x['field']}: #{x['message']}" }.join("; "))
    end
    rest = batch.reject.with_index { |_session, index| reasons.key?(index) }
    rest.empty? ? [] : send_batch(client, rest)
  end
end
