"""gunicorn settings: `gunicorn -c gateway/gunicorn_conf.py 'gateway:create_app()'`.

gthread workers with many threads, so a slow upstream (held to its bulkhead, well below the
thread count) can never occupy every worker. Values come from the gateway's settings.
"""

from gateway.config import GatewaySettings
from observability.tracing import post_fork, worker_exit  # noqa: F401 - gunicorn server hooks

_settings = GatewaySettings.from_env()

bind = f"{_settings.host}:{_settings.port}"
worker_class = "gthread"
workers = _settings.workers
threads = _settings.threads
# Idle keep-alive connections wait in the worker's poller, not in a thread. Keep them open
# longer than any caller's pool idle timeout (Locust, services, a load balancer), or reused
# pooled connections meet RSTs and healthy replicas look broken (TOOLING.md pitfall).
keepalive = _settings.keepalive_seconds
worker_connections = 2000
timeout = 60
graceful_timeout = 10
# Header limits are checked here first (400); the gateway adds its own total (431).
limit_request_line = 8190
limit_request_fields = _settings.max_header_count
limit_request_field_size = 8190
# gunicorn 25+ otherwise shares one control socket under ~/.gunicorn between every master.
control_socket_disable = True
accesslog = None
errorlog = "-"
