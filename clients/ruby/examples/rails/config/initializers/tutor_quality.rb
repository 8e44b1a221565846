# frozen_string_literal: true

# config/initializers/tutor_quality.rb: one client for the app, configured from the environment.
# Copy clients/ruby/tutor_quality_client.rb to lib/tutor_quality_client.rb first.
require Rails.root.join("lib/tutor_quality_client").to_s

Rails.application.config.x.tutor_quality_client = TutorQuality::Client.new(
  base_url: ENV.fetch("TUTOR_QUALITY_URL"),            # e.g. https://tutor-quality-api.onrender.com
  api_key: ENV.fetch("TUTOR_QUALITY_API_KEY"),         # a key with the ingest scope: tqs keys create rails --scope ingest
  max_attempts: 5,                                     # 429/503/timeouts within one job run, then the job retries
  open_timeout: 5,
  read_timeout: 30,
  logger: Rails.logger
)
