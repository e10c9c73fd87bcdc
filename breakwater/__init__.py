"""Breakwater's command line, and only that: `breakwater.cli:main` is the entry point.

One module per command group (`stack_cli`, `chaos_cli`, `traces_cli`, `load_cli`,
`experiment_cli`, `report_cli`, `demo_cli`), each parsing arguments and printing what the
library packages return. Layer: CLI, the top; no package imports it.
"""
