"""Fault experiments: YAML definitions, a runner, probes, verdicts.

    from chaos.experiments.runner import run_experiment
    result = run_experiment("cart-outage", resilience=False)

Layer: load and experiments. It uses the local stack (`local_stack`), the fault library
(`chaos.faults`) and the load runner (`loadtests`); its reports are drawn a layer above, by
`chaos.reports`, from what a run hands back.
"""
