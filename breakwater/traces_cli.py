"""`breakwater traces list|show|export`: find traces in span files or Jaeger and print them."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from breakwater.arguments import positive_int, url


def register(subparsers: Any) -> None:
    """Add the `traces` command group."""
    traces = subparsers.add_parser(
        "traces", help="list, show and export traces (local span files or Jaeger)",
        description="Read traces from var/traces/ span files (or --dir), or from Jaeger's query "
                    "API (--jaeger URL, or BREAKWATER_JAEGER_URL).")
    actions = traces.add_subparsers(dest="traces_command", metavar="ACTION", required=True)

    def source_options(parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--jaeger", metavar="URL", type=url,
                            help="Jaeger query service, e.g. http://localhost:16686")
        parser.add_argument("--dir", metavar="PATH",
                            help="span files folder (default $BREAKWATER_TRACES_DIR, else "
                            "var/traces)")

    listing = actions.add_parser("list", help="recent traces as a table")
    listing.add_argument("--service", metavar="NAME",
                         help="only traces this service took part in")
    listing.add_argument("--errors", action="store_true", help="only traces with a failed span")
    listing.add_argument("--slowest", type=positive_int, metavar="N", help="the N slowest traces")
    listing.add_argument("--limit", type=positive_int, default=20, metavar="N",
                         help="at most N (20)")
    source_options(listing)
    listing.set_defaults(func=list_traces)

    show = actions.add_parser("show", help="one trace as a waterfall")
    show.add_argument("trace_id", metavar="TRACE_ID", help="the trace id or a unique prefix")
    show.add_argument("--width", type=positive_int, default=40, metavar="COLUMNS",
                      help="width of the duration bars (40)")
    source_options(show)
    show.set_defaults(func=show_trace)

    export = actions.add_parser("export", help="one trace as a JSON file Jaeger's UI opens")
    export.add_argument("trace_id", metavar="TRACE_ID", help="the trace id or a unique prefix")
    export.add_argument("-o", "--output", metavar="FILE", help="write here (default: stdout)")
    source_options(export)
    export.set_defaults(func=export_trace)


def list_traces(args: argparse.Namespace) -> int:
    """Print a table of traces, or where none were found and how to get some."""
    from observability.render import trace_table
    from observability.spans import open_source, select_traces

    source = open_source(args.jaeger, args.dir)
    fetch = max(args.limit or 0, args.slowest or 0, 20) * (5 if args.slowest else 1)
    found = source.traces(service=args.service, limit=fetch, errors=args.errors)
    chosen = select_traces(found, service=args.service, errors=args.errors,
                           slowest=args.slowest, limit=args.limit)
    print(trace_table(chosen) if chosen else no_traces(source, found, args))
    return 0


def no_traces(source: Any, found: list[Any], args: argparse.Namespace) -> str:
    """Why the table is empty: where it looked, and how to get traces there."""
    from observability.spans import JaegerQuery

    where = (f"Jaeger at {source.url}" if isinstance(source, JaegerQuery)
             else f"{Path(source.path).absolute()} (span files)")
    if found:
        wanted = " and ".join(filter(None, [f"service {args.service}" if args.service else "",
                                            "errors" if args.errors else ""]))
        return (f"no traces with {wanted} among the {len(found)} in {where}; "
                "try without the filter")
    how = ("send spans there: OTEL_EXPORTER_OTLP_ENDPOINT=http://localhost:4318 breakwater up"
           if isinstance(source, JaegerQuery) else
           "start the stack (`breakwater up`) and send it a request (`curl -s "
           "localhost:8080/api/v1/products`)\nor read traces from elsewhere: --dir PATH (span "
           "files), --jaeger URL (Jaeger)")
    return f"no traces found in {where}\nto get some: {how}"


def show_trace(args: argparse.Namespace) -> int:
    """Print one trace as a waterfall."""
    from observability.render import waterfall
    from observability.spans import open_source

    print(waterfall(open_source(args.jaeger, args.dir).trace(args.trace_id), width=args.width))
    return 0


def export_trace(args: argparse.Namespace) -> int:
    """Write one trace in Jaeger's JSON format."""
    from observability.spans import open_source, to_jaeger_json

    found = open_source(args.jaeger, args.dir).trace(args.trace_id)
    text = json.dumps(to_jaeger_json([found]), indent=2)
    if args.output and args.output != "-":
        with open(args.output, "w", encoding="utf-8") as out:
            out.write(text + "\n")
        print(f"wrote {args.output}: trace {found.trace_id}, {len(found.spans)} spans "
              f"(open it in Jaeger UI: Search → JSON File)", file=sys.stderr)
    else:
        print(text)
    return 0
