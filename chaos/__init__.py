"""Fault injection for Breakwater: the fault proxy, the fault library, experiments and reports.

- `chaos.toxiproxy`: the embedded fault proxy (`python -m chaos.toxiproxy`), speaking the
  control API of Toxiproxy 2.12. Layer: runtime.
- `chaos.client`: a small HTTP client for that API (works against the real Toxiproxy too), and
  `chaos.faults`: named faults (`down`, `latency`, `timeout`, …) aimed at services by name.
  Layer: runtime (the fault proxy's own client library).
- `chaos.experiments`: definitions, runner, probes, verdicts. Layer: load and experiments.
- `chaos.reports`: plots, report.html, the listing of runs, the demo. Layer: reports.
"""
