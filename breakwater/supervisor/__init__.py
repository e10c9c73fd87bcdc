"""The local supervisor: `breakwater up | down | status | scale | seed | logs` as a library.

`Supervisor(var_dir).up(StackOptions(...))` starts the fault proxy, every service under
gunicorn (each instance behind its own proxy listener, optionally in its own CPU cgroup) and
the gateway; `down()` stops exactly that; `scale("product", 3)` adds or removes replicas;
`stack_status(supervisor)` reports; `seed(gateway_url, var_dir)` fills the shop.
"""

from breakwater.supervisor.stack import (
    DownReport,
    StackError,
    StackOptions,
    StackRunning,
    StartupError,
    Supervisor,
)
from breakwater.supervisor.state import StackState, load_state
from breakwater.supervisor.status import StackStatus, stack_status

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
