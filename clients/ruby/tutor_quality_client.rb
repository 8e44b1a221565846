# frozen_string_literal: true

# A dependency-free client for the Tutor Quality API (Net::HTTP and JSON from Ruby's standard library).
# Copy this file into a Rails app (lib/tutor_quality_client.rb); docs/rails.md shows the glue around it.
#
#   client = TutorQuality::Client.new(base_url: "https://tqs.example.com", api_key: ENV.fetch("TUTOR_QUALITY_API_KEY"))
#   client.post_sessions([{ session_id: "s-1", tutor_id: "t-1", student_id: "u-1",
#                           scheduled_time: "2026-11-24T15:00:00Z", status: "completed" }])
#   # => #<struct TutorQuality::Result accepted=1, session_ids=["s-1"], attempts=1>
#
# What the API's answers mean to a caller:
# - 202: stored (and scored shortly after). Posting the same sessions again is harmless: a session is
#   identified by its session_id, and an identical re-post changes nothing.
# - 429 (over the key's rate limit), 502/503/504 (database unreachable, a deploy in progress) and connection
#   errors or timeouts: retried, waiting what Retry-After says (capped at max_delay), or a growing backoff.
#   After max_attempts, TutorQuality::Unavailable: let the job retry later.
# - 400: the records are wrong, which is a bug in the mapping: TutorQuality::InvalidSessions, never retried,
#   with every bad field (and its index in the batch) in #errors. Nothing of that batch was stored.
# - 401/403: TutorQuality::AuthenticationError (a missing, revoked or wrong-scope key), never retried.

require "json"
require "net/http"
require "openssl"
require "time"
require "uri"

module TutorQuality
  # Every error this client raises.
  class Error < StandardError
    attr_reader :status, :body

    def initialize(message, status: nil, body: nil)
      super(message)
      @status = status
      @body = body
    end
  end

  # 400: the batch failed validation (a bug to report, not to retry); #errors names each bad field.
  class InvalidSessions < Error
    def errors
      detail = body.is_a?(Hash) ? body["error"] : nil
      detail.is_a?(Hash) ? Array(detail["errors"]) : []
    end
  end

  # 401 or 403: the key is missing, unknown, revoked, or may not send sessions.
  class AuthenticationError < Error; end

  # Still 429/5xx or unreachable after every attempt: worth trying again later.
  class Unavailable < Error; end

  # Any other answer (404, 413, 415, 500...): not something a retry fixes.
  class UnexpectedResponse < Error; end

  Result = Struct.new(:accepted, :session_ids, :attempts, keyword_init: true)

  # Counts across every call, for logs and the post_sessions.rb summary.
  class Stats
    attr_reader :requests, :statuses, :waits

    def initialize
      @requests = 0
      @statuses = Hash.new(0)
      @waits = []
      @lock = Mutex.new
    end

    def record(status)
      @lock.synchronize do
        @requests += 1
        @statuses[status.to_s] += 1
      end
    end

    def record_wait(status, retry_after, seconds)
      @lock.synchronize { @waits << { "status" => status.to_s, "retry_after" => retry_after, "seconds" => seconds } }
    end

    def to_h
      @lock.synchronize { { "requests" => @requests, "statuses" => @statuses.dup, "waits" => @waits.dup } }
    end
  end

  class Client
    MAX_BATCH = 1000 # the API takes up to 1,000 sessions per request
    RETRY_STATUSES = [429, 502, 503, 504].freeze
    CONNECTION_ERRORS = [
      Timeout::Error, Errno::ECONNREFUSED, Errno::ECONNRESET, Errno::EHOSTUNREACH, Errno::ENETUNREACH,
      Errno::ETIMEDOUT, Errno::EPIPE, EOFError, IOError, SocketError, OpenSSL::SSL::SSLError
    ].freeze

    attr_reader :stats

    # max_delay caps every wait (a Retry-After above it is cut to it); base_delay starts the backoff used
    # when the answer has no Retry-After (doubling, with jitter). sleeper and logger are for tests and Rails.
    def initialize(base_url:, api_key:, max_attempts: 5, open_timeout: 5, read_timeout: 30, max_delay: 30,
                   base_delay: 0.5, logger: nil, sleeper: ->(seconds) { sleep(seconds) })
      raise ArgumentError, "api_key is required" if api_key.nil? || api_key.to_s.strip.empty?
      raise ArgumentError, "max_attempts must be at least 1" if max_attempts.to_i < 1

      @uri = URI.join(base_url.to_s.end_with?("/") ? base_url.to_s : "#{base_url}/", "api/sessions")
      @api_key = api_key.to_s.strip
      @max_attempts = max_attempts.to_i
      @open_timeout = open_timeout
      @read_timeout = read_timeout
      @max_delay = max_delay.to_f
      @base_delay = base_delay.to_f
      @logger = logger
      @sleeper = sleeper
      @stats = Stats.new
    end

    # POST one batch (1 to 1,000 session hashes); returns a Result once the API answered 202.
    def post_sessions(sessions)
      sessions = Array(sessions)
      unless (1..MAX_BATCH).cover?(sessions.size)
        raise ArgumentError, "a batch holds 1 to #{MAX_BATCH} sessions (got #{sessions.size})"
      end

      body = JSON.generate(sessions)
      attempt = 0
      loop do
        attempt += 1
        status, response = send_once(body)
        if status == 202
          parsed = parse(response.body)
          return Result.new(accepted: parsed["accepted"], session_ids: parsed["session_ids"], attempts: attempt)
        end
        raise_final(status, response) unless status == :connection_error || RETRY_STATUSES.include?(status)
        if attempt >= @max_attempts
          raise Unavailable.new("gave up after #{attempt} attempts; last: #{describe(status, response)}",
                                status: status, body: response && parse(response.body))
        end
        wait_before_retry(status, response, attempt)
      end
    end

    private

    def send_once(body)
      request = Net::HTTP::Post.new(@uri)
      request["Authorization"] = "Bearer #{@api_key}"
      request["Content-Type"] = "application/json"
      request["Accept"] = "application/json"
      request["User-Agent"] = "tutor-quality-ruby/1.0"
      request.body = body
      response = Net::HTTP.start(@uri.host, @uri.port, use_ssl: @uri.scheme == "https",
                                 open_timeout: @open_timeout, read_timeout: @read_timeout,
                                 write_timeout: @read_timeout) do |http|
        http.max_retries = 0 # retries are ours, with their waits
        http.request(request)
      end
      @stats.record(response.code.to_i)
      [response.code.to_i, response]
    rescue *CONNECTION_ERRORS => e
      @stats.record(:connection_error)
      @logger&.warn("tutor_quality: #{e.class}: #{e.message}")
      [:connection_error, nil]
    end

    def raise_final(status, response)
      body = parse(response.body)
      case status
      when 400 then raise InvalidSessions.new("the API rejected the batch: #{describe(status, response)}",
                                              status: status, body: body)
      when 401, 403 then raise AuthenticationError.new("the API refused the key: #{describe(status, response)}",
                                                      status: status, body: body)
      else raise UnexpectedResponse.new("unexpected answer: #{describe(status, response)}", status: status,
                                                                                            body: body)
      end
    end

    def wait_before_retry(status, response, attempt)
      header = response && response["Retry-After"]
      told = retry_after_seconds(header)
      seconds = [told || backoff(attempt), @max_delay].min
      @stats.record_wait(status, header, seconds)
      @logger&.info("tutor_quality: #{status}, retrying in #{format('%.1f', seconds)} s (attempt #{attempt + 1})")
      @sleeper.call(seconds)
    end

    # Retry-After is seconds, or an HTTP date; nil when absent or unreadable.
    def retry_after_seconds(header)
      return nil if header.nil? || header.strip.empty?
      return Float(header.strip) if header.strip.match?(/\A\d+(\.\d+)?\z/)

      [Time.httpdate(header.strip) - Time.now, 0.0].max
    rescue ArgumentError
      nil
    end

    def backoff(attempt)
      delay = [@base_delay * (2**(attempt - 1)), @max_delay].min
      (delay / 2) + (rand * delay / 2)
    end

    def describe(status, response)
      return "no answer (connection failed or timed out)" if response.nil?

      detail = parse(response.body)["error"]
      return "#{status} #{response.message}".strip unless detail.is_a?(Hash)

      text = "#{status} #{detail['title']}"
      text += ": #{detail['message']}" if detail["message"]
      errors = Array(detail["errors"]).first(20).map do |error|
        "#{error['index'].nil? ? '' : "[#{error['index']}] "}#{error['field']}: #{error['message']}"
      end
      errors.empty? ? text : "#{text} (#{errors.join('; ')})"
    end

    def parse(text)
      value = text.nil? || text.empty? ? {} : JSON.parse(text)
      value.is_a?(Hash) ? value : {}
    rescue JSON::ParserError
      {}
    end
  end
end
