# Two images from one file, both installing exact versions from requirements.lock:
#   service (the default target): the four services, the gateway and the one-shot jobs
#     (keys, migrations); the first argument of the entry point chooses the process:
#       docker run breakwater:0.1.0 serve product | gateway | migrate cart | keys
#   locust: the same code and the load generator (Locust master and workers), nothing else:
#       docker build --target locust -t breakwater-locust:0.1.0 .
# The service image holds only what pyproject.toml's dependencies list (no Locust, no
# matplotlib); the Locust image adds its `load` extra.
FROM python:3.11.14-slim-bookworm AS base

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PYTHONPATH=/app \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    BREAKWATER_VAR_DIR=/tmp/breakwater \
    HOME=/tmp

WORKDIR /app

# A fixed non-root uid/gid, so volumes and Kubernetes securityContext can name them. HOME is
# /tmp (writable even on a read-only root): gunicorn >= 25 puts its control socket there.
RUN groupadd --system --gid 10001 breakwater \
 && useradd --system --uid 10001 --gid breakwater --home-dir /app --no-create-home \
        --shell /usr/sbin/nologin breakwater \
 && mkdir -p /var/lib/breakwater/keys/private /var/lib/breakwater/keys/public \
 && chown -R breakwater:breakwater /var/lib/breakwater \
 && chmod 0700 /var/lib/breakwater/keys/private

# Dependencies in their own layer, rebuilt only when pyproject.toml or the lock changes: the
# list (the dependencies, plus the extras named in EXTRAS) is read from pyproject itself,
# and every version comes from the lock. The sources are not installed as a package: the code
# runs from /app (PYTHONPATH), copied below.
COPY pyproject.toml requirements.lock ./
COPY deploy/docker/requirements.py /opt/breakwater/requirements.py

FROM base AS service-dependencies
RUN python /opt/breakwater/requirements.py > /tmp/requirements.txt \
 && pip install --no-cache-dir -c requirements.lock -r /tmp/requirements.txt \
 && rm /tmp/requirements.txt

FROM service-dependencies AS locust-dependencies
RUN python /opt/breakwater/requirements.py load > /tmp/requirements.txt \
 && pip install --no-cache-dir -c requirements.lock -r /tmp/requirements.txt \
 && rm /tmp/requirements.txt

# The code, run from /app so paths are the checkout's: /app/loadtests/locustfile.py,
# python -m gateway, services/<name>/migrations. Compiled now: the root filesystem
# is read-only in Kubernetes.
FROM base AS code
COPY services ./services
COPY gateway ./gateway
COPY chaos ./chaos
COPY observability ./observability
COPY loadtests ./loadtests
COPY local_stack ./local_stack
COPY breakwater ./breakwater
COPY console ./console
COPY deploy/docker/entrypoint.sh deploy/docker/*.py /opt/breakwater/
RUN python -m compileall -q /app /opt/breakwater \
 && chmod 0755 /opt/breakwater/entrypoint.sh

FROM locust-dependencies AS locust
COPY --from=code /app /app
COPY --from=code /opt/breakwater /opt/breakwater
USER 10001:10001
# The master's web UI answers on 8089 (workers have no port; compose disables their check).
HEALTHCHECK --interval=10s --timeout=3s --start-period=20s --retries=3 \
    CMD ["python", "/opt/breakwater/healthcheck.py", "http://127.0.0.1:8089/"]
EXPOSE 8089 5557
ENTRYPOINT ["/opt/breakwater/entrypoint.sh"]
CMD ["locust", "--help"]

FROM service-dependencies AS service
COPY --from=code /app /app
COPY --from=code /opt/breakwater /opt/breakwater
USER 10001:10001

# Every role answers /healthz on the port it listens on; the script finds that port itself
# (compose and Kubernetes name the exact URL). slim has no curl: Python does the request.
HEALTHCHECK --interval=10s --timeout=3s --start-period=20s --retries=3 \
    CMD ["python", "/opt/breakwater/healthcheck.py"]

# 8081: the gateway's admin port (/gateway/upstreams, /metrics), never published.
EXPOSE 8080 8081 5000 5002 5003 5004
ENTRYPOINT ["/opt/breakwater/entrypoint.sh"]
CMD ["help"]
