"""Benchmark 7: flash-sale integrity at load — units sold vs stock, and checkout throughput.

Short runs of the real `flash-sale-integrity` experiment (far more buyers than units, cart
resetting connections and then slow as the sale opens), each audited through the public
APIs afterwards by the experiment itself. Units sold must equal the stock in every run.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from bench.common import Context
from bench.stacks import StackPool, definition, experiment_kwargs, shared_options
from bench.stats import BenchResult, Target, median, ratio

NAME = "integrity"
TITLE = "Flash-sale integrity at load"
LOAD_GENERATOR = "Locust FastHttpUser (loadtests.runner, flash-sale shape)"


def _experiment(ctx: Context) -> Any:
    experiment = definition("flash-sale-integrity")
    experiment = dataclasses.replace(experiment, stack=shared_options(ctx, experiment.name))
    buyers, stock = ctx.settings.integrity_buyers, ctx.settings.integrity_stock
    if buyers is None:
        return experiment
    return dataclasses.replace(experiment, load={**experiment.load, "users": buyers},
                               options={**experiment.options, "accounts": buyers,
                                        "stock": stock or experiment.options.get("stock", 30)})


def figures(summary: dict[str, Any]) -> dict[str, Any]:
    """The numbers one run gives this benchmark."""
    audit = summary.get("audit") or {}
    sale = (summary.get("groups") or {}).get("sale") or {}
    checkout = sale.get("checkout") or {}
    seconds = checkout.get("seconds") or 0
    return {
        "stock": audit.get("stock"), "units_sold": audit.get("units_sold"),
        "sold_vs_stock": ratio(audit.get("units_sold"), audit.get("stock")),
        "oversold": audit.get("oversold"), "unaccounted_units": audit.get("unaccounted_units"),
        "duplicate_orders": audit.get("duplicate_orders"),
        "inconsistent_orders": audit.get("inconsistent_orders"),
        "checkout_attempts": audit.get("checkout_attempts"), "buyers": audit.get("buyers"),
        "checkout_rps": checkout.get("rps"), "checkout_requests": checkout.get("requests"),
        "checkout_failures": checkout.get("failures"),
        "checkout_answered_share": ratio((checkout.get("requests") or 0)
                                         - (checkout.get("failures") or 0),
                                         checkout.get("requests")),
        "confirmed_orders_per_s": ratio(audit.get("units_sold"), seconds),
        "checkout_p50_ms": checkout.get("p50_ms"), "checkout_p95_ms": checkout.get("p95_ms"),
        "catalog_rps": (sale.get("catalog") or {}).get("rps"),
        "verdicts": {v["name"]: v["status"] for v in summary.get("verdicts", [])},
        "hypothesis_holds": summary.get("hypothesis_holds"),
    }


def run(ctx: Context, pool: StackPool) -> BenchResult:
    """`reps` short flash sales, each audited; the integrity targets."""
    from chaos.experiments.runner import run_experiment

    experiment = _experiment(ctx)
    pool.ensure(dict(experiment.stack))
    runs = []
    notes = []
    for rep in range(ctx.settings.reps):
        if ctx.over_budget():
            notes.append(f"time budget used: stopped after {rep} repetition(s)")
            break
        ctx.log(f"  flash sale rep {rep + 1}/{ctx.settings.reps}")
        result = run_experiment(experiment, duration_scale=ctx.settings.integrity_scale,
                                **experiment_kwargs(pool))
        run = figures(result.summary)
        run["report"] = str(result.run_dir)
        runs.append(run)
        ctx.log(f"    sold {run['units_sold']}/{run['stock']}, oversold {run['oversold']}, "
                f"checkout {_fmt(run['checkout_rps'])} req/s")
    worst = max(runs, key=lambda r: abs((r["sold_vs_stock"] or 0) - 1.0), default=None)
    bad = sum(1 for r in runs if r["units_sold"] != r["stock"])
    targets = [
        Target(NAME, "units sold ÷ stock (worst repetition; must be exactly 1)", "==", 1.0,
               unit="x", load_generator=LOAD_GENERATOR).judge(
            worst["sold_vs_stock"] if worst else None,
            f"{len(runs) - bad}/{len(runs)} runs sold exactly the stock; per run "
            + ", ".join(f"{r['units_sold']}/{r['stock']}" for r in runs)),
        Target(NAME, "oversold + unaccounted + duplicate orders (all runs)", "==", 0,
               load_generator=LOAD_GENERATOR).judge(
            float(sum((r["oversold"] or 0) + abs(r["unaccounted_units"] or 0)
                      + (r["duplicate_orders"] or 0) for r in runs)) if runs else None),
        Target(NAME, "checkout throughput during the sale", "", None, unit="req/s",
               load_generator=LOAD_GENERATOR).judge(
            median([r["checkout_rps"] for r in runs]),
            f"confirmed orders {_fmt(median([r['confirmed_orders_per_s'] for r in runs]))}/s; "
            f"checkout p95 {_fmt(median([r['checkout_p95_ms'] for r in runs]))} ms"),
        Target(NAME, "checkout answers without failure ÷ checkout requests", "", None, unit="x",
               load_generator=LOAD_GENERATOR).judge(
            median([r["checkout_answered_share"] for r in runs]),
            "sold-out 409s count as answers; failures include cart faults' 503s"),
    ]
    return BenchResult(NAME, TITLE, targets, raw={"runs": runs, "experiment": {
        "users": experiment.load.get("users"), "stock": experiment.options.get("stock"),
        "duration_scale": ctx.settings.integrity_scale}}, load_generator=LOAD_GENERATOR,
        pinning="not pinned (stack under its CPU quotas)", notes=notes)


def _fmt(value: float | None) -> str:
    return "—" if value is None else f"{value:.2f}"
