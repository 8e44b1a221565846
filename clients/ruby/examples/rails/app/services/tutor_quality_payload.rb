# frozen_string_literal: true

# One Rails session as the Tutor Quality API's JSON (see GET /api/openapi.json, schema "Session").
# Ids are strings (at most 128 characters), times ISO 8601 in UTC, names at most 200 characters.
class TutorQualityPayload
  def initialize(session)
    @session = session
  end

  def to_h
    {
      session_id: @session.id.to_s,
      tutor_id: @session.tutor_id.to_s,
      student_id: @session.student_id.to_s,
      scheduled_time: iso(@session.scheduled_at),         # the slot as booked (the original one if it moved)
      status: @session.status,                            # completed, no_show or rescheduled
      completed_time: iso(@session.ended_at),
      tutor_name: @session.tutor.name,                    # stored in plaintext: admins search by it
      student_name: @session.student.first_name,          # encrypted at rest by Tutor Quality
      subject: @session.subject,
      duration_minutes: @session.duration_minutes,
      is_first_session: first_session?,                   # the first-session rule counts only these
      reschedule_info: reschedule_info
    }.compact
  end

  private

  # Required when status is rescheduled, and refused otherwise.
  def reschedule_info
    reschedule = @session.reschedule
    return nil unless @session.status == "rescheduled" && reschedule # missing: the API names the field
    {
      initiator: reschedule.requested_by,                 # "tutor" or "student": only tutors' count against them
      reason: reschedule.reason,                          # free text, encrypted at rest (at most 2,000 characters)
      original_time: iso(@session.scheduled_at),
      new_time: iso(reschedule.new_scheduled_at),
      requested_at: iso(reschedule.created_at)            # how much notice the student got
    }.compact
  end

  def first_session?
    !TutoringSession.where(tutor_id: @session.tutor_id, student_id: @session.student_id)
                    .where("scheduled_at < ?", @session.scheduled_at).exists?
  end

  def iso(time)
    time&.utc&.iso8601
  end
end
