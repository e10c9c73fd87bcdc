"""Prometheus naming, checked on a real `/metrics` text with prometheus-client's own parser.

- the text parses (`text_string_to_metric_families`);
- names are snake_case in Breakwater's namespace (or Toxiproxy's, for the fault proxy's own);
- a counter's samples end in `_total` (or `_created`): what only grows is never a gauge;
- no gauge is named like a counter (`_total`) or like a running count of refusals;
- a `*_state` gauge has a `state` label, one series per state, exactly one of them 1.
"""

from __future__ import annotations

import re
from collections import defaultdict

from prometheus_client.parser import text_string_to_metric_families

NAME = re.compile(r"^(breakwater|toxiproxy)_[a-z0-9_]+$")
CUMULATIVE_WORDS = ("rejected", "refused", "transitions", "ejections", "retried", "failures")


def naming_problems(text: str) -> list[str]:
    """What is wrong with the exposition `text` (empty when it follows the conventions)."""
    problems = []
    families = list(text_string_to_metric_families(text))
    if not families:
        return ["no metric at all"]
    for family in families:
        if not NAME.match(family.name):
            problems.append(f"{family.name}: not snake_case in the breakwater_/toxiproxy_ namespace")
        if family.type == "counter":
            bad = [s.name for s in family.samples
                   if not (s.name.endswith("_total") or s.name.endswith("_created"))]
            if bad:
                problems.append(f"{family.name}: counter samples without _total: {bad[:3]}")
        if family.type == "gauge" and not family.name.endswith("_created"):
            # (`<counter>_created` is the creation timestamp prometheus-client adds to counters)
            if family.name.endswith("_total"):
                problems.append(f"{family.name}: a gauge named like a counter")
            if any(word in family.name for word in CUMULATIVE_WORDS):
                problems.append(f"{family.name}: a running count exposed as a gauge")
            if family.name.endswith("_state"):
                problems.extend(_state_problems(family))
    return problems


def _state_problems(family) -> list[str]:
    if any("state" not in s.labels for s in family.samples):
        return [f"{family.name}: a state gauge without a `state` label (a code is not a state)"]
    by_subject: dict[tuple, dict[str, float]] = defaultdict(dict)
    for sample in family.samples:
        subject = tuple(sorted((k, v) for k, v in sample.labels.items() if k != "state"))
        by_subject[subject][sample.labels["state"]] = sample.value
    problems = []
    for subject, states in by_subject.items():
        if sorted(states.values()) != [0.0] * (len(states) - 1) + [1.0]:
            problems.append(f"{family.name}{dict(subject)}: states {states} are not one-hot")
    return problems
