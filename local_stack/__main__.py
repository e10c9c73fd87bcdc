"""`python -m local_stack keeper --var DIR --stack-id ID`: the stack's keeper, which `up` starts
(run through the package so its modules are imported once)."""

from __future__ import annotations

import sys

from local_stack.keeper import main

USAGE = "usage: python -m local_stack keeper --var DIR --stack-id ID"

if __name__ == "__main__":
    if sys.argv[1:2] != ["keeper"]:
        print(f"{USAGE}\n(the local stack is started with `breakwater up`)", file=sys.stderr)
        raise SystemExit(2)
    raise SystemExit(main(sys.argv[2:]))
