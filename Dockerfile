# One image for every process: the API (the default command), `tqs worker` and `tqs dashboard`.
#   docker build -t tutor-quality .          (or: make docker)
#   docker run -e TQS_DATABASE_URL=… -e TQS_QUEUE_URL=… -e TQS_API_KEYS=… -e TQS_SECRET_KEY=… -p 8000:8000 tutor-quality
#   docker run --no-healthcheck … tutor-quality tqs worker
# Runtime dependencies only (no test tools), at the versions in constraints.txt. See docs/deploy.md.

FROM python:3.11-slim AS wheel
WORKDIR /src
COPY . .
RUN pip wheel --quiet --no-deps --wheel-dir /wheels .

FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PORT=8000 \
    TQS_DATA_DIR=/var/lib/tutor-quality

# The dependencies get their own layer, rebuilt only when setup.cfg or constraints.txt change.
COPY setup.cfg constraints.txt /tmp/install/
RUN python -c "import configparser; c = configparser.ConfigParser(); c.read('/tmp/install/setup.cfg'); \
print(c['options']['install_requires'])" > /tmp/install/requirements.txt \
 && pip install --quiet -r /tmp/install/requirements.txt -c /tmp/install/constraints.txt \
 && rm -rf /tmp/install

COPY --from=wheel /wheels /tmp/wheels
RUN pip install --quiet --no-deps /tmp/wheels/*.whl && rm -rf /tmp/wheels

# Never root. TQS_DATA_DIR holds the embedded SQLite files and, when TQS_SECRET_KEY is unset, a generated
# secret.key: in production set TQS_SECRET_KEY (and a Postgres URL), since a container's disk is not kept.
RUN useradd --system --uid 10001 --user-group --create-home --home-dir /home/tqs tqs \
 && mkdir -p /var/lib/tutor-quality && chown tqs:tqs /var/lib/tutor-quality
USER tqs
WORKDIR /var/lib/tutor-quality

EXPOSE 8000
# GET /api/health needs no key; it answers 503 when the database is unreachable, which fails the check.
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
  CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/api/health' % os.environ.get('PORT', '8000'), timeout=4)"]

# `tqs api` migrates the schema, then execs gunicorn, which becomes PID 1 and gets the container's SIGTERM.
# It starts 2 x the host's cores worker processes unless WEB_CONCURRENCY says how many (set it on big hosts).
CMD ["sh", "-c", "exec tqs api --bind 0.0.0.0:${PORT} ${WEB_CONCURRENCY:+--workers $WEB_CONCURRENCY}"]
