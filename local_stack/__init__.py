"""The local stack as a library: `breakwater up | down | status | scale | seed | logs`.

`Supervisor(var_dir).up(StackOptions(...))` starts the fault proxy, every service under
gunicorn (each instance behind its own proxy listener, optionally in its own CPU cgroup) and
the gateway; `down()` stops exactly that; `scale("product", 3)` adds or removes replicas;
`stack_status(supervisor)` reports; `seed(gateway_url, var_dir)` fills the shop.

Layer: local stack. It starts the runtime's processes and uses the fault proxy's client; the
experiments and the CLI use it, nothing below does.
"""

from local_stack.stack import (
    DownReport,
    StackError,
    StackOptions,
    StackRunning,
    StartupError,
    Supervisor,
)
from local_stack.state import StackState, load_state
from local_stack.status import StackStatus, stack_status

__all__ = [
    "DownReport",
    "StackError",
    "StackOptions",
    "StackRunning",
    "StackState",
    "StackStatus",
    "StartupError",
    "Supervisor",
    "load_state",
    "stack_status",
]
