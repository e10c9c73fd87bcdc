"""The demo: the headline experiments on one local stack, each with its report, as table rows.

    rows = run_demo(duration_scale=0.7, keep=False)

`breakwater demo` prints the rows; each says whether the hypothesis held and whether that was
the expected outcome (with resilience off, cart-outage is expected to fail).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from chaos.experiments.stack import LocalStack
from chaos.reports import run_and_report

# (experiment, options): the order runs them on one stack, restarting it as little as possible.
DEMO_PLAN: tuple[tuple[str, dict[str, Any]], ...] = (
    ("cart-outage", {"resilience": True}),
    ("cart-outage", {"resilience": False}),
    ("flash-sale-integrity", {}),
    ("product-scaling", {}),
    # Last: it kills instances (the keeper restarts them). A fixed seed, one whose schedule
    # (at the demo's 0.7 duration scale) kills order while checkouts wait on product: the same
    # faults each time, `breakwater experiment run checkout-nemesis.short --seed 5
    # --duration-scale 0.7` replays it.
    ("checkout-nemesis.short", {"seed": 5}),
)


@dataclass(frozen=True)
class DemoRow:
    """One line of the verdict table."""

    experiment: str
    resilience: bool
    holds: bool | None
    run_dir: Path

    @property
    def expected(self) -> bool:
        """What the hypothesis should do: hold with resilience on, fail with it off."""
        return self.resilience

    @property
    def as_expected(self) -> bool:
        return self.holds is self.expected

    @property
    def verdict(self) -> str:
        return "n/a" if self.holds is None else ("HOLDS" if self.holds else "FAILS")


def run_demo(*, duration_scale: float = 0.7, keep: bool = False, stack: LocalStack | None = None,
             plan: tuple[tuple[str, dict[str, Any]], ...] = DEMO_PLAN,
             log: Callable[[str], None] = print) -> list[DemoRow]:
    """Run the plan on one stack (left running with `keep`); a row per experiment."""
    stack = stack or LocalStack()
    rows = []
    try:
        for name, options in plan:
            result = run_and_report(name, resilience=options.get("resilience"), keep_stack=True,
                                    duration_scale=duration_scale, stack=stack, log=log,
                                    seed=options.get("seed"))
            rows.append(DemoRow(name, options.get("resilience", True) is not False, result.holds,
                                result.run_dir))
    finally:
        if not keep:
            stack.down(log=log)
    return rows
