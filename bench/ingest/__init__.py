"""Benchmark of the real HTTP path: POST /api/sessions -> inbox + Redis -> Huey workers -> scores visible.

Starts ``tqs api`` (gunicorn) and ``tqs worker`` as subprocesses on a throwaway PostgreSQL database
(on the server of ``TQS_TEST_DATABASE_URL``) and a dedicated Redis DB number, then measures:

* throughput for the shapes real clients send, each in time order and shuffled:
  80 tutors with 500 sessions per POST (about six per tutor per batch) and 200 tutors with 100 per
  POST (one or two per tutor per batch, as a backfill or a sync after an outage looks);
  sessions per second scored end to end (nothing left to store, no tutor left to rescore), as a
  share of the single-row INSERT+COMMIT ceiling measured in the same run;
* live single-session POSTs at a steady rate (sessions of the last hour, existing and new tutors):
  the time from POST to the session counting in its tutor's score, polled every 50 ms or slower;
* CPU per session by role (API, worker, PostgreSQL) from /proc.

    python -m bench.ingest [--scale 1.0] [--rate 100] [--live-seconds 20] [--skip live]
"""
