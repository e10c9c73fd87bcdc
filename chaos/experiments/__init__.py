"""Fault experiments: YAML definitions, a runner, probes, verdicts (see DESIGN.md).

    from chaos.experiments.runner import run_experiment
    result = run_experiment("cart-outage", resilience=False)
"""
