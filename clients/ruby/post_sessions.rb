# frozen_string_literal: true

# Post a JSON array of sessions from a file through TutorQuality::Client, in batches, and print a
# one-line JSON summary: the sessions in the file, those accepted, the batches accepted, the requests and
# retries it took (each wait with the Retry-After that caused it), and every status seen.
#
#   TUTOR_QUALITY_API_KEY=… ruby clients/ruby/post_sessions.rb --url http://127.0.0.1:8000 sessions.json
#
# Exit status: 0 when every batch was accepted; 1 when the API refused one (400 or 401/403: nothing more is
# sent) or stayed unavailable; 2 on a usage error or an unreadable file.

require "json"
require "optparse"
require_relative "tutor_quality_client"

options = { url: ENV.fetch("TUTOR_QUALITY_URL", "http://127.0.0.1:8000"), key: ENV.fetch("TUTOR_QUALITY_API_KEY", nil),
            batch_size: 500, max_attempts: 5, max_delay: 30.0 }
parser = OptionParser.new do |opts|
  opts.banner = "usage: ruby post_sessions.rb [options] FILE.json"
  opts.on("--url URL", "the API's base URL (default: $TUTOR_QUALITY_URL or http://127.0.0.1:8000)") { |v| options[:url] = v }
  opts.on("--key KEY", "an API key (default: $TUTOR_QUALITY_API_KEY)") { |v| options[:key] = v }
  opts.on("--batch-size N", Integer, "sessions per request, 1 to 1000 (default 500)") { |v| options[:batch_size] = v }
  opts.on("--max-attempts N", Integer, "tries per batch (default 5)") { |v| options[:max_attempts] = v }
  opts.on("--max-delay SECONDS", Float, "longest wait between tries (default 30)") { |v| options[:max_delay] = v }
end

def finish(summary, code)
  puts JSON.generate(summary)
  exit code
end

begin
  parser.parse!
  raise OptionParser::InvalidArgument, "give exactly one FILE.json" unless ARGV.size == 1
  raise OptionParser::InvalidArgument, "--batch-size must be 1 to 1000" unless (1..1000).cover?(options[:batch_size])
  raise OptionParser::InvalidArgument, "an API key is required (--key or TUTOR_QUALITY_API_KEY)" unless options[:key]

  sessions = JSON.parse(File.read(ARGV[0]))
  raise OptionParser::InvalidArgument, "#{ARGV[0]} must hold a JSON array of sessions" unless sessions.is_a?(Array)
rescue OptionParser::ParseError, SystemCallError, JSON::ParserError => e
  warn "post_sessions: #{e.message}"
  warn parser.banner
  finish({ "ok" => false, "error" => { "class" => e.class.name, "message" => e.message } }, 2)
end

client = TutorQuality::Client.new(base_url: options[:url], api_key: options[:key],
                                  max_attempts: options[:max_attempts], max_delay: options[:max_delay])
summary = { "ok" => true, "sessions" => sessions.size, "accepted" => 0, "batches" => 0 }
error = nil
sessions.each_slice(options[:batch_size]) do |batch|
  begin
    result = client.post_sessions(batch)
  rescue TutorQuality::Error => e
    error = e
    break
  end
  summary["batches"] += 1
  summary["accepted"] += result.accepted.to_i
end

stats = client.stats.to_h
summary["requests"] = stats["requests"]
summary["retries"] = stats["waits"].size
summary["statuses"] = stats["statuses"]
summary["waits"] = stats["waits"]
if error
  summary["ok"] = false
  summary["error"] = { "class" => error.class.name, "status" => error.status, "message" => error.message }
  summary["error"]["errors"] = error.errors if error.is_a?(TutorQuality::InvalidSessions)
  warn "post_sessions: #{error.message}"
end
finish(summary, error ? 1 : 0)
