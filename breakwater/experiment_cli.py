"""`breakwater experiment list | run | export`: parsing and printing only.

The work is done by `chaos.experiments` and, for the report of a run, `chaos.reports`.
"""

from __future__ import annotations

import argparse
import json
import sys
import textwrap
from typing import Any

from breakwater.arguments import non_negative_int, port, positive_float, positive_int, url

FORMATS = ("chaostoolkit",)


def register(subparsers: Any) -> None:
    """Add the `experiment` command group."""
    experiment = subparsers.add_parser("experiment", help="fault experiments with verdicts")
    actions = experiment.add_subparsers(dest="action", metavar="ACTION", required=True)
    listing = actions.add_parser("list", help="the experiments and their variants")
    listing.set_defaults(func=list_experiments)

    run = actions.add_parser("run", help="run one experiment (NAME or NAME.VARIANT)",
                             description="Run one experiment: its stack, load, faults and "
                             "probes; write reports/<time>-<name>/ and exit 0 when the "
                             "hypothesis holds, 1 when it does not.")
    run.add_argument("name", metavar="NAME", help="an experiment or NAME.VARIANT "
                     "(`breakwater experiment list`)")
    run.add_argument("--resilience", choices=("on", "off"),
                     help="protections on or off (default: the definition's)")
    run.add_argument("--product-replicas", type=positive_int, metavar="N",
                     help="product instances of the stack (default: the definition's)")
    run.add_argument("--duration-scale", type=positive_float, default=1.0, metavar="FACTOR",
                     help="multiply every time in the definition (e.g. 0.5; default 1)")
    run.add_argument("--keep-stack", action="store_true",
                     help="leave a stack this run started running")
    run.add_argument("--seed", type=non_negative_int, metavar="N",
                     help="the nemesis schedule's seed (checkout-nemesis; default: a random "
                     "one, printed: the same seed replays the same faults at the same times)")
    run.add_argument("--db", metavar="sqlite|URL-TEMPLATE",
                     help="the stack's databases: sqlite, or e.g. "
                     "mysql+pymysql://root@127.0.0.1:3306/bw_{service} (default: sqlite)")
    run.add_argument("--port-base", type=port, metavar="P",
                     help="start the stack with every port moved by P-5000 (0: free ports, "
                     "beside a stack already running on the usual ones)")
    run.set_defaults(func=run_experiment)

    export = actions.add_parser(
        "export", help="write an experiment for another tool (Chaos Toolkit)",
        description="Write the experiment for Chaos Toolkit's `chaos run`: its faults through "
        "chaostoolkit-toxiproxy, HTTP probes of the shop as the steady-state hypothesis, "
        "rollbacks. Proxies are named as the running stack names them (else local mode's "
        "names); addresses default to the running stack's.")
    export.add_argument("name", metavar="NAME", help="an experiment or NAME.VARIANT")
    export.add_argument("--format", choices=FORMATS, default="chaostoolkit",
                        help="the tool to write for (default chaostoolkit)")
    export.add_argument("-o", "--output", metavar="FILE", help="write here (default: stdout)")
    export.add_argument("--duration-scale", type=positive_float, default=1.0, metavar="FACTOR",
                        help="multiply every time in the definition (default 1)")
    export.add_argument("--toxiproxy", metavar="URL", type=url,
                        help="the fault proxy to name proxies from (default: the running "
                        "stack's, $TOXIPROXY_URL, or http://127.0.0.1:8474)")
    export.set_defaults(func=export_experiment)


def list_experiments(args: argparse.Namespace) -> int:
    """`breakwater experiment list`: name, version, kind, length, and the description wrapped."""
    from chaos.experiments.model import definitions

    for name, experiment in definitions().items():
        variants = ", ".join(f"{name}.{v}" for v in experiment.variants)
        print(f"{name:24} v{experiment.version}  {experiment.kind:9} "
              f"{experiment.duration:.0f} s" + (f"  (variants: {variants})" if variants else ""))
        if experiment.description:
            print(textwrap.fill(" ".join(experiment.description.split()), width=96,
                                initial_indent="    ", subsequent_indent="    ",
                                break_on_hyphens=False, break_long_words=False))
    return 0


def run_experiment(args: argparse.Namespace) -> int:
    """`breakwater experiment run NAME …`: exit 0 when the hypothesis holds, 1 otherwise."""
    from chaos.experiments.model import find
    from chaos.experiments.stack import LocalStack
    from chaos.reports import run_and_report as run

    # An unknown name or a stack that cannot start is the error line before the run's folder
    # is made or any process starts.
    stack = dict(find(args.name).stack)
    if args.product_replicas is not None:
        stack["product_replicas"] = args.product_replicas
    if args.db is not None:
        stack["db"] = args.db
    LocalStack.stack_options(stack, args.port_base).validate()
    resilience = None if args.resilience is None else args.resilience == "on"
    result = run(args.name, resilience=resilience, product_replicas=args.product_replicas,
                 duration_scale=args.duration_scale, keep_stack=args.keep_stack,
                 seed=args.seed, db=args.db, stack=LocalStack(port_base=args.port_base))
    print(f"report: {result.run_dir / 'report.html'}")
    return 0 if result.holds else 1


def export_experiment(args: argparse.Namespace) -> int:
    """`breakwater experiment export NAME --format chaostoolkit [-o FILE]`."""
    from chaos.experiments.chaostoolkit import to_chaostoolkit
    from chaos.experiments.model import find

    experiment = find(args.name).scaled(args.duration_scale)
    targets = _stack_addresses(args.toxiproxy)
    document = to_chaostoolkit(experiment, proxies_for=targets.pop("proxies_for"), **targets)
    text = json.dumps(document, indent=2)
    if args.output and args.output != "-":
        with open(args.output, "w", encoding="utf-8") as out:
            out.write(text + "\n")
        print(f"wrote {args.output}: run it with `chaos run {args.output}` "
              "(pip install chaostoolkit chaostoolkit-toxiproxy)", file=sys.stderr)
    else:
        print(text)
    return 0


def _stack_addresses(toxiproxy: str | None) -> dict[str, Any]:
    """The running stack's gateway, fault proxy, proxy names and a seeded shopper; local
    mode's defaults where nothing runs."""
    from chaos.client import UnreachableError, toxiproxy_url
    from chaos.experiments.stack import LocalStack
    from chaos.faults import Faults
    from loadtests.accounts import accounts_from_seed, seed_document
    from local_stack.ports import instance_name
    from local_stack.seed import SEED_PASSWORD

    stack = LocalStack()
    state = stack.state()
    url = toxiproxy or (state.toxiproxy_url if state is not None else None) or toxiproxy_url()
    replicas = int((state.options if state is not None else {}).get("product_replicas", 1))
    faults = Faults(url)
    try:
        faults.services()
        proxies_for = faults.proxies_for
    except UnreachableError:
        def proxies_for(target: str) -> list[str]:
            count = replicas if target == "product" else 1
            return [instance_name(target, n) for n in range(1, count + 1)]
    seed = seed_document(stack.var_dir / "seed.json")
    shopper = accounts_from_seed({"password": SEED_PASSWORD, **seed}, default_count=1)[0]
    return {"proxies_for": proxies_for,
            "gateway_url": state.gateway_url if state is not None else "http://127.0.0.1:8080",
            "toxiproxy_url": url, "shopper_email": shopper.email,
            "shopper_password": shopper.password}
