"""pybreaker comes without the redis client it would import for a storage never used, and
redis stays importable for whoever does use it."""

from __future__ import annotations

import subprocess
import sys

from tests.architecture.test_lean_processes import ROOT


def test_pybreaker_loads_without_redis_and_redis_still_imports_after() -> None:
    script = (
        "import sys\n"
        "from services.common.circuit_library import pybreaker\n"
        "assert 'redis' not in sys.modules, 'redis was imported'\n"
        "assert pybreaker.HAS_REDIS_SUPPORT is False\n"
        "import redis\n"  # the auth limiter's storage may need it: still there
        "assert sys.modules['redis'] is redis and redis.Redis\n"
        "print('ok')\n")
    done = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0, done.stderr[-1500:]
    assert done.stdout.strip() == "ok"
