# couchgate: `docker build -t couchgate .`, then see docker-compose.yml (next to CouchDB) or run
# it alone on its embedded store: `docker run -p 5980:5980 -v couchgate:/var/lib/couchgate couchgate`.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

RUN groupadd --system --gid 10001 couchgate \
    && useradd --system --uid 10001 --gid couchgate --home-dir /var/lib/couchgate \
        --create-home --shell /usr/sbin/nologin couchgate

WORKDIR /src
COPY pyproject.toml README.md ./
COPY gateway ./gateway
COPY encryption_plugin ./encryption_plugin
RUN pip install . && rm -rf /src

USER couchgate
WORKDIR /var/lib/couchgate
ENV COUCHGATE_HOST=0.0.0.0 \
    COUCHGATE_PORT=5980 \
    COUCHGATE_DATA_DIR=/var/lib/couchgate/data
VOLUME ["/var/lib/couchgate"]
EXPOSE 5980

# Liveness only (the process serves); readiness (/readyz) is the orchestrator's to ask.
HEALTHCHECK --interval=15s --timeout=5s --start-period=10s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('COUCHGATE_PORT', '5980'), timeout=3)"]

# SIGTERM: stop accepting, end live feeds, finish requests within COUCHGATE_SHUTDOWN_TIMEOUT.
STOPSIGNAL SIGTERM
ENTRYPOINT ["couchgate"]
CMD ["serve"]
