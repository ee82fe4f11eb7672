# One image for every process of Allegro Orders Backup; the command picks the process:
#   python -m api                    REST API on API__HOST:API__PORT (8000)
#   python -m producers              the poller
#   python -m processors worker      the Faust worker
#   python -m simulator --host 0.0.0.0 --port 8080 --seed 1
#   python -m db upgrade             schema migrations
#   python -m core.topics            create the Kafka topics of the contract
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PROCESSOR__DATA_DIR=/var/lib/allegro-backup/faust

# /app stays root-owned and read-only to the processes; Faust's local state goes to the one writable
# directory, which compose mounts as a volume.
RUN useradd --create-home --uid 10001 --user-group app \
    && mkdir -p /var/lib/allegro-backup \
    && chown app:app /var/lib/allegro-backup

WORKDIR /app
COPY . .
# Runtime dependencies only (no dev extras). The processes still run from /app, where `python -m` finds
# the packages first: db.migrate reads alembic.ini and the migrations beside the source tree.
RUN pip install -c constraints.txt . && rm -rf build *.egg-info

USER app
EXPOSE 8000 8080
CMD ["python", "-c", "print('Allegro Orders Backup. Run one process:\\n  python -m api\\n  python -m producers\\n  python -m processors worker\\n  python -m simulator --host 0.0.0.0 --port 8080 --seed 1\\n  python -m db upgrade\\n  python -m core.topics')"]
