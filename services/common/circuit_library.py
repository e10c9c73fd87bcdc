"""pybreaker, imported without its optional Redis storage.

pybreaker imports the redis client when it is first imported, for a `CircuitRedisStorage`
Breakwater never uses (breaker state is each process's own, in memory): 5.3 MB in every
process with a breaker (the gateway, cart, order). While pybreaker loads, `import redis` is
refused, so pybreaker sets `HAS_REDIS_SUPPORT = False` as it does where redis is not
installed; the refusal is lifted at once, so anything else (the auth service's limiter, when
its storage is Redis) imports redis as usual. Import pybreaker from here.
"""

from __future__ import annotations

import sys

if "pybreaker" in sys.modules or "redis" in sys.modules:
    import pybreaker
else:
    sys.modules["redis"] = None  # type: ignore[assignment] # an import of it raises ImportError
    try:
        import pybreaker
    finally:
        if sys.modules.get("redis", ...) is None:
            del sys.modules["redis"]

__all__ = ["pybreaker"]
