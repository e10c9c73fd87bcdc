"""gunicorn settings the fork test uses: tracing set up in the master (preload), then forked.

Also the shape of a real service's config: the two hooks come from observability.tracing.
"""

from observability.tracing import post_fork, worker_exit  # noqa: F401 - gunicorn hooks

preload_app = True
workers = 2
worker_class = "sync"
graceful_timeout = 5
# gunicorn 27 opens a control socket in ~/.gunicorn by default, shared by every master of
# the user; tests running side by side must not fight over it.
control_socket_disable = True
accesslog = None
errorlog = "-"
