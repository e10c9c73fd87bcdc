"""Breakers, bulkheads and rejections from the gateway's upstream view (`/gateway/upstreams`).

Gateways that report a breaker's failure rate, slow-call rate and time to its next trial
(`failure_rate`, `slow_call_rate`, `next_trial_in`) have them shown as they are; for older
ones the time to the next trial is estimated from the last change to open plus the policy's
reset timeout, and the rates are left out rather than guessed.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

BREAKER_STATES = ("closed", "open", "half-open")


def instance_name(url: str, names: Mapping[str, str]) -> str:
    """The name of the fault-proxy listener at `url` (`cart`, `product-2`), else host:port."""
    address = urlsplit(url).netloc or url
    return names.get(address, address)


def next_trial(instance: Mapping[str, Any], reset_timeout: float | None,
               now: float) -> tuple[float | None, bool]:
    """(seconds to the next trial, estimated?) of an instance; None unless open."""
    if instance.get("breaker") != "open":
        return None, False
    if instance.get("next_trial_in") is not None:
        return max(0.0, float(instance["next_trial_in"])), False
    opened = [c.get("at") for c in instance.get("breaker_changes") or []
              if c.get("to") == "open" and isinstance(c.get("at"), int | float)]
    if not opened or reset_timeout is None:
        return None, True
    return max(0.0, opened[-1] + reset_timeout - now), True


def _rate(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def breaker_view(view: Mapping[str, Any], names: Mapping[str, str], now: float,
                 previous: Mapping[str, float] | None = None,
                 elapsed: float | None = None) -> list[dict[str, Any]]:
    """Every upstream with its instances, for the page; `previous` rejections (by upstream)
    `elapsed` seconds ago give the rejection rate."""
    rows = []
    for upstream, body in sorted((view.get("upstreams") or {}).items()):
        policy = body.get("policy") or {}
        reset = policy.get("reset_timeout")
        bulkhead = body.get("bulkhead") or {}
        rejected = bulkhead.get("rejected") or 0
        rejected_rate = None
        if previous is not None and elapsed and upstream in previous:
            rejected_rate = round(max(0.0, rejected - previous[upstream]) / elapsed, 2)
        instances = []
        for item in body.get("instances") or []:
            wait, estimated = next_trial(item, reset if isinstance(reset, int | float) else None,
                                         now)
            errors = item.get("recent_errors") or []
            instances.append({
                "name": instance_name(str(item.get("url", "")), names),
                "url": item.get("url", ""),
                "state": item.get("breaker", "unknown"),
                "next_trial_in": None if wait is None else round(wait, 1),
                "next_trial_estimated": estimated,
                "failure_rate": _rate(item.get("failure_rate")),
                "slow_call_rate": _rate(item.get("slow_call_rate")),
                "calls_in_window": item.get("calls_in_window"),
                "failures_in_a_row": item.get("failures_in_a_row"),
                "in_flight": item.get("outstanding", 0),
                "served": item.get("served", 0),
                "failures": item.get("failures", 0),
                "ejected_for": item.get("ejected_for") or 0,
                "last_error": (errors[-1].get("error") if errors else "") or "",
            })
        rows.append({
            "upstream": upstream,
            "bulkhead": {"in_use": bulkhead.get("in_use", 0), "limit": bulkhead.get("limit", 0),
                         "rejected": rejected, "rejected_per_s": rejected_rate},
            "counts": body.get("counts") or {},
            "instances": instances,
        })
    return rows


def rejections(view: Mapping[str, Any]) -> dict[str, float]:
    """Bulkhead rejections so far, by upstream (for the next call's rate)."""
    return {name: float((body.get("bulkhead") or {}).get("rejected") or 0)
            for name, body in (view.get("upstreams") or {}).items()}
