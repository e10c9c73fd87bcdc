"""Fault injection for Breakwater: a Toxiproxy-compatible proxy server and a faults library.

- `chaos.toxiproxy`: the embedded fault proxy (`python -m chaos.toxiproxy`), speaking the
  control API of Toxiproxy 2.12 (see /work/shared/TOXIPROXY.md).
- `chaos.client`: a small HTTP client for that API (works against the real Toxiproxy too).
- `chaos.faults`: named faults (`down`, `latency`, `timeout`, …) aimed at services by name.
"""
