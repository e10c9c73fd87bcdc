"""A Breakwater experiment as a Chaos Toolkit experiment, for `chaos run`.

    document = to_chaostoolkit(find("cart-outage"), proxies_for=lambda t: [t])

What carries over: the faults, at their times, through the `chaostoolkit-toxiproxy` driver
(`chaostoxi`: a proxy disabled for `down`, a toxic named as `breakwater chaos` names it for
the others), each undone in the method when the definition ends it and again in `rollbacks`;
a steady-state hypothesis of HTTP probes through the gateway (the catalog answers, a seeded
shopper can log in) checked before the faults and after the recovery pause; and probes of the
catalog while each fault holds, recorded in Chaos Toolkit's journal. What does not: the load
and the verdicts on latency, breakers and stock, which need Breakwater's own runner
(`breakwater experiment run`). Addresses are Chaos Toolkit configuration read from the
environment (`BREAKWATER_GATEWAY_URL`, `TOXIPROXY_URL`, …) with the export's values as
defaults, so `chaos run --var gateway_url=…` or the variables point it elsewhere.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from chaos.experiments.model import DefinitionError, Experiment, FaultStep

TOXIC_ACTIONS = "chaostoxi.toxic.actions"
PROXY_ACTIONS = "chaostoxi.proxy.actions"
HTTP_TIMEOUT_S = 5


def _toxic(kind: str, params: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """Toxiproxy's toxic type and attributes for a fault, as `chaos.faults.Faults` sets them."""
    if kind == "latency":
        return "latency", {"latency": int(params.get("ms", 0)),
                           "jitter": int(params.get("jitter", 0))}
    if kind in ("timeout", "reset_peer"):
        return kind, {"timeout": int(params.get("ms", 0))}
    if kind == "bandwidth":
        return "bandwidth", {"rate": int(params["kbps"])}
    if kind == "slicer":
        return "slicer", {"average_size": int(params.get("average_size", 64)),
                          "size_variation": int(params.get("size_variation", 16)),
                          "delay": int(params.get("delay_us", 1000))}
    if kind == "slow_close":
        return "slow_close", {"delay": int(params.get("ms", 0))}
    if kind == "limit_data":
        return "limit_data", {"bytes": int(params.get("nbytes", params.get("bytes", 0)))}
    raise DefinitionError(f"no Chaos Toolkit action for a {kind!r} fault")


def _python(name: str, module: str, func: str, arguments: dict[str, Any],
            pause_before: float = 0.0) -> dict[str, Any]:
    activity: dict[str, Any] = {"type": "action", "name": name,
                                "provider": {"type": "python", "module": module, "func": func,
                                             "arguments": arguments}}
    if pause_before > 0:
        activity["pauses"] = {"before": round(pause_before, 3)}
    return activity


def fault_actions(step: FaultStep, proxies: list[str], pause_before: float = 0.0
                  ) -> list[dict[str, Any]]:
    """The actions that apply a fault to each of its proxies (the first one waits)."""
    actions = []
    for index, proxy in enumerate(proxies):
        wait = pause_before if index == 0 else 0.0
        if step.kind == "down":
            actions.append(_python(f"{proxy}: down", PROXY_ACTIONS, "disable_proxy",
                                   {"proxy_name": proxy}, wait))
            continue
        toxic_type, attributes = _toxic(step.kind, step.params)
        stream = str(step.params.get("stream", "downstream"))
        actions.append(_python(
            f"{proxy}: {step.label()}", TOXIC_ACTIONS, "create_toxic",
            {"for_proxy": proxy, "toxic_name": f"{toxic_type}_{stream}",
             "toxic_type": toxic_type, "stream": stream,
             "toxicity": float(step.params.get("toxicity", 1.0)), "attributes": attributes},
            wait))
    return actions


def undo_actions(step: FaultStep, proxies: list[str], pause_before: float = 0.0,
                 prefix: str = "") -> list[dict[str, Any]]:
    """The actions that remove a fault from each of its proxies (the first one waits)."""
    actions = []
    for index, proxy in enumerate(proxies):
        wait = pause_before if index == 0 else 0.0
        if step.kind == "down":
            actions.append(_python(f"{prefix}{proxy}: back up", PROXY_ACTIONS, "enable_proxy",
                                   {"proxy_name": proxy}, wait))
        else:
            toxic_type, _ = _toxic(step.kind, step.params)
            stream = str(step.params.get("stream", "downstream"))
            actions.append(_python(f"{prefix}{proxy}: {step.kind} removed", TOXIC_ACTIONS,
                                   "delete_toxic", {"for_proxy": proxy,
                                                    "toxic_name": f"{toxic_type}_{stream}"},
                                   wait))
    return actions


def steady_state_probes() -> list[dict[str, Any]]:
    """What must hold before the faults and after the recovery: catalog and login answer."""
    return [
        {"type": "probe", "name": "the catalog answers", "tolerance": 200,
         "provider": {"type": "http", "url": "${gateway_url}/api/v1/products",
                      "timeout": HTTP_TIMEOUT_S}},
        {"type": "probe", "name": "a seeded shopper can log in", "tolerance": 200,
         "provider": {"type": "http", "method": "POST",
                      "url": "${gateway_url}/api/v1/auth/login",
                      "headers": {"Content-Type": "application/json"},
                      "arguments": {"email": "${shopper_email}",
                                    "password": "${shopper_password}"},
                      "timeout": HTTP_TIMEOUT_S}},
    ]


def during_fault_probe(step: FaultStep) -> dict[str, Any]:
    """The catalog asked while a fault holds; its answer goes into the journal."""
    return {"type": "probe", "name": f"the catalog while {step.label()}",
            "provider": {"type": "http", "url": "${gateway_url}/api/v1/products",
                         "timeout": HTTP_TIMEOUT_S}}


def _timeline(experiment: Experiment) -> list[tuple[float, str, FaultStep]]:
    end = experiment.duration
    events = []
    for step in experiment.faults:
        events.append((step.at, "apply", step))
        events.append((step.until if step.until is not None else end, "remove", step))
    # At the same second a removal goes first, as the runner's schedule does.
    return sorted(events, key=lambda e: (e[0], e[1] == "apply"))


def to_chaostoolkit(experiment: Experiment, *, proxies_for: Callable[[str], list[str]],
                    gateway_url: str = "http://127.0.0.1:8080",
                    toxiproxy_url: str = "http://127.0.0.1:8474",
                    shopper_email: str = "user1@breakwater.test",
                    shopper_password: str = "") -> dict[str, Any]:
    """The Chaos Toolkit experiment (a JSON-able dict) of a Breakwater experiment with faults;
    `proxies_for(target)` names the proxies a target's fault hits."""
    if not experiment.faults:
        raise DefinitionError(
            f"{experiment.name} injects no fault (a {experiment.kind} experiment): there is "
            f"nothing for Chaos Toolkit to run; use `breakwater experiment run {experiment.name}`")
    proxies = {step.target: proxies_for(step.target) for step in experiment.faults}
    method: list[dict[str, Any]] = []
    now = 0.0
    for time, what, step in _timeline(experiment):
        if what == "apply":
            method.extend(fault_actions(step, proxies[step.target], time - now))
            method.append(during_fault_probe(step))
        else:
            method.extend(undo_actions(step, proxies[step.target], time - now))
        now = time
    recovery = experiment.windows.get("recovery")
    if recovery and recovery[0] > now:
        # The hypothesis is checked again once the shop has had its recovery time.
        method[-1].setdefault("pauses", {})["after"] = round(recovery[0] - now, 3)
    rollbacks = [action for step in experiment.faults
                 for action in undo_actions(step, proxies[step.target], prefix="rollback: ")]
    return {
        "version": "1.0.0",
        "title": f"{experiment.name} (Breakwater experiment v{experiment.version})",
        "description": experiment.description,
        "tags": ["breakwater", experiment.name, *sorted({s.kind for s in experiment.faults})],
        "configuration": {
            "gateway_url": {"type": "env", "key": "BREAKWATER_GATEWAY_URL",
                            "default": gateway_url},
            "toxiproxy_url": {"type": "env", "key": "TOXIPROXY_URL", "default": toxiproxy_url},
            "shopper_email": {"type": "env", "key": "BREAKWATER_SHOPPER_EMAIL",
                              "default": shopper_email},
            "shopper_password": {"type": "env", "key": "BREAKWATER_SHOPPER_PASSWORD",
                                 "default": shopper_password},
        },
        "steady-state-hypothesis": {
            "title": "the shop answers: catalog and login through the gateway",
            "probes": steady_state_probes(),
        },
        "method": method,
        "rollbacks": rollbacks,
    }
