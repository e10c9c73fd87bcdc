"""The local stack as a library: `breakwater up | down | status | scale | seed | logs`.

`Supervisor(var_dir).up(StackOptions(...))` starts the fault proxy, every service under
gunicorn (each instance behind its own proxy listener, optionally in its own CPU cgroup) and
the gateway; `down()` stops exactly that; `scale("product", 3)` adds or removes replicas;
`stack_status(supervisor)` reports; `seed(gateway_url, var_dir)` fills the shop.

Layer: local stack. It starts the runtime's processes and uses the fault proxy's client; the
experiments and the CLI use it, nothing below does.
"""

from __future__ import annotations

import importlib
from typing import Any

# Where each name lives, imported on first use: the keeper (`python -m local_stack keeper`)
# runs for the stack's whole life and needs none of the supervisor's imports (requests...).
_EXPORTS = {
    "DownReport": "local_stack.stack",
    "StackError": "local_stack.stack",
    "StackOptions": "local_stack.stack",
    "StackRunning": "local_stack.stack",
    "StartupError": "local_stack.stack",
    "Supervisor": "local_stack.stack",
    "StackState": "local_stack.state",
    "load_state": "local_stack.state",
    "StackStatus": "local_stack.status",
    "stack_status": "local_stack.status",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'local_stack' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
