# One image for every Breakwater process: the four services, the gateway, the one-shot jobs
# (keys, migrations) and Locust. They share one Python package and one dependency set, so one
# build serves them all; the first argument of the entry point chooses the process:
#   docker run breakwater:0.1.0 serve product | gateway | migrate cart | keys | locust -f …
FROM python:3.11.14-slim-bookworm

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

# Dependencies in their own layer, rebuilt only when pyproject.toml changes: the list is read
# from pyproject itself (one source of versions), without the sources that change every day.
# Locust runs from this image too (master and workers); it is added, pinned, unless pyproject
# lists it itself.
ARG LOCUST_REQUIREMENT="locust==2.47.0"
COPY pyproject.toml ./
RUN python -c "import os, tomllib; d = tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']; \
d += [] if any(x.lower().startswith('locust') for x in d) else [os.environ['LOCUST_REQUIREMENT']]; \
print('\n'.join(d))" > /tmp/requirements.txt \
 && pip install --no-cache-dir -r /tmp/requirements.txt \
 && rm /tmp/requirements.txt

# The code, run from /app (PYTHONPATH) so paths are the checkout's: /app/loadtests/locustfile.py,
# /app/gateway/gunicorn_conf.py, services/<name>/migrations. Compiled now: the root filesystem
# is read-only in Kubernetes.
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

USER 10001:10001

# Every role answers /healthz on the port it listens on; the script finds that port itself
# (compose and Kubernetes name the exact URL). slim has no curl: Python does the request.
HEALTHCHECK --interval=10s --timeout=3s --start-period=20s --retries=3 \
    CMD ["python", "/opt/breakwater/healthcheck.py"]

EXPOSE 8080 5000 5002 5003 5004
ENTRYPOINT ["/opt/breakwater/entrypoint.sh"]
CMD ["help"]
