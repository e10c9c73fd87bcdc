"""The `breakwater` command as a newcomer meets it: a version, help on every option, every value
checked before anything is made or started, and one error line instead of a traceback."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import pytest

from breakwater import cli
from breakwater.cli import build_parser, main
from tests.support.processes import ROOT


@pytest.fixture
def reports(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty reports folder of the test's own (BREAKWATER_REPORTS_DIR)."""
    folder = tmp_path / "reports"
    monkeypatch.setenv("BREAKWATER_REPORTS_DIR", str(folder))
    monkeypatch.setenv("BROWSER", "true")  # `report open` must not start a real browser
    return folder


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    """`breakwater ARGV` in this process: (exit status, stdout, stderr), argparse's exits too."""
    try:
        status = main(list(argv))
    except SystemExit as exit_info:
        status = exit_info.code
    out, err = capsys.readouterr()
    return int(status or 0), out, err


def made(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    status, out, _ = run(capsys, "--version")
    assert status == 0 and out.strip() == f"breakwater {cli.version()}"
    assert cli.version()[0].isdigit()


@pytest.mark.parametrize(("argv", "message"), [
    (["load", "browse", "--duration", "5x"],
     "breakwater load: error: argument --duration: not a duration: '5x'"),
    (["load", "nonexistent"], "breakwater load: error: argument SCENARIO: invalid choice"),
    (["load", "browse", "--users", "0"], "breakwater load: error: argument --users: must be"),
    (["load", "browse", "--workers", "0"], "breakwater load: error: argument --workers"),
    # Valid arguments the library refuses: still the error line, and still nothing made.
    (["load", "catalog"], "breakwater load: error: the rate shape needs --rate RPS"),
    (["load", "browse", "--rate", "10"], "breakwater load: error: scenario 'browse' is closed"),
    (["experiment", "run", "nonexistent"],
     "breakwater experiment run: error: no experiment 'nonexistent'"),
    (["experiment", "run", "cart-outage", "--duration-scale", "0"],
     "breakwater experiment run: error: argument --duration-scale: must be more than 0"),
    (["experiment", "run", "cart-outage.nope"],
     "breakwater experiment run: error: cart-outage has no variant 'nope'"),
    (["experiment", "run", "cart-outage", "--product-replicas", "99"],
     "breakwater experiment run: error: --product-replicas must be 1..50"),
    (["load", "browse", "--host", "localhost:8080"],
     "breakwater load: error: argument --host: not an http(s) URL: 'localhost:8080'"),
    (["experiment", "export", "product-scaling"],
     "breakwater experiment export: error: product-scaling injects no fault"),
])
def test_bad_input_is_one_line_exit_2_and_creates_nothing(
        capsys: pytest.CaptureFixture[str], reports: Path, argv: list[str], message: str) -> None:
    status, out, err = run(capsys, *argv)

    assert status == 2
    assert message in err, err
    assert "Traceback" not in err
    assert made(reports) == []


@pytest.mark.parametrize(("argv", "message"), [
    (["toxiproxy", "--port", "99999"], "argument --port: port 99999 is out of range"),
    (["up", "--port-base", "70000"], "argument --port-base: port 70000 is out of range"),
    (["up", "--product-replicas", "0"], "argument --product-replicas: must be at least 1"),
    (["up", "--timeout", "-3"], "argument --timeout: must be more than 0"),
    (["scale", "product=3", "--timeout", "soon"], "argument --timeout: not a number: 'soon'"),
    (["seed", "--users", "-1"], "argument --users: must be at least 0"),
    (["logs", "gateway", "-n", "many"], "argument -n/--lines: not a whole number"),
    (["demo", "--duration-scale", "0"], "argument --duration-scale: must be more than 0"),
    (["chaos", "down", "cart", "--for", "soon"], "argument --for: not a duration"),
    (["traces", "list", "--limit", "0"], "argument --limit: must be at least 1"),
])
def test_values_are_checked_while_parsing(capsys: pytest.CaptureFixture[str], tmp_path: Path,
                                          argv: list[str], message: str) -> None:
    status, _, err = run(capsys, *argv, *(["--var-dir", str(tmp_path / "var")]
                                          if argv[0] in ("up", "scale", "seed", "logs") else []))

    assert status == 2 and message in err, err
    assert not (tmp_path / "var").exists()


def test_a_port_out_of_range_never_starts_the_fault_proxy() -> None:
    result = subprocess.run([sys.executable, "-m", "breakwater", "toxiproxy", "--port", "99999"],
                            cwd=ROOT, capture_output=True, text=True, timeout=30)
    assert result.returncode == 2 and "listening" not in result.stdout
    assert "breakwater toxiproxy: error: argument --port: port 99999 is out of range" \
        in result.stderr


def test_a_real_process_prints_no_traceback(reports: Path) -> None:
    result = subprocess.run([sys.executable, "-m", "breakwater", "load", "catalog"],
                            cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert result.stderr.startswith("breakwater load: error: the rate shape needs --rate RPS")
    assert "Traceback" not in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert made(reports) == []


def test_library_errors_of_every_group_use_the_one_format(capsys: pytest.CaptureFixture[str],
                                                          tmp_path: Path) -> None:
    var = tmp_path / "var"
    var.mkdir()
    (var / "stack.json").write_text("{not json")
    status, _, err = run(capsys, "status", "--var-dir", str(var))
    assert status == 2 and err.startswith("breakwater status: error: ")

    status, _, err = run(capsys, "logs", "nothing", "--var-dir", str(tmp_path / "other"))
    assert status == 2 and err.startswith("breakwater logs: error: no log for 'nothing'")
    assert "`breakwater status` lists the instances" in err

    status, _, err = run(capsys, "traces", "export", "abc", "--dir", str(tmp_path / "none"))
    assert status == 2 and err.startswith("breakwater traces export: error: no trace id")


def test_a_bug_keeps_its_traceback(capsys: pytest.CaptureFixture[str],
                                   monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(args: argparse.Namespace) -> int:
        return {}["missing"]

    monkeypatch.setattr("breakwater.experiment_cli.list_experiments", broken)
    with pytest.raises(KeyError):
        main(["experiment", "list"])


def test_debug_shows_the_traceback_of_a_user_error() -> None:
    with pytest.raises(ValueError, match="needs --rate"):
        main(["--debug", "load", "catalog"])


def _actions(parser: argparse.ArgumentParser, path: str):
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, child in action.choices.items():
                yield from _actions(child, f"{path} {name}")
        elif not isinstance(action, argparse._HelpAction | argparse._VersionAction):
            yield path, action


def test_every_option_and_argument_has_help() -> None:
    missing = [f"{path} {'/'.join(action.option_strings) or action.dest}"
               for path, action in _actions(build_parser(), "breakwater")
               if not (action.help or "").strip()]
    assert missing == []


def test_proxy_commands_ask_for_a_proxy_not_a_service() -> None:
    helps = {f"{path} {action.dest}": action.help for path, action in
             _actions(build_parser(), "breakwater") if not action.option_strings}
    for command in ("create", "inspect", "toggle", "delete"):
        assert "proxy" in helps[f"breakwater chaos {command} name"]
        assert "service" not in helps[f"breakwater chaos {command} name"]
    assert "one instance" in helps["breakwater chaos latency service"]


def test_experiment_list_wraps_descriptions_at_word_boundaries(
        capsys: pytest.CaptureFixture[str]) -> None:
    from chaos.experiments.model import definitions

    status, out, _ = run(capsys, "experiment", "list")
    assert status == 0
    listed = out.split("\n")
    for name, experiment in definitions().items():
        start = next(i for i, line in enumerate(listed) if line.startswith(name + " "))
        lines = []
        for line in listed[start + 1:]:
            if not line.startswith("    "):
                break
            lines.append(line.strip())
        assert " ".join(lines) == " ".join(experiment.description.split())
        assert all(len(line) <= 96 for line in lines)


def test_traces_list_says_where_it_looked_and_how_to_get_traces(
        capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    folder = tmp_path / "nothing-here"
    status, out, _ = run(capsys, "traces", "list", "--dir", str(folder))
    assert status == 0
    assert str(folder) in out and "breakwater up" in out and "--jaeger" in out


def test_report_open_with_no_argument_opens_the_index(capsys: pytest.CaptureFixture[str],
                                                      reports: Path) -> None:
    status, out, _ = run(capsys, "report", "open")
    assert status == 0 and out.strip() == str((reports / "index.html").resolve())
    assert "No runs yet" in (reports / "index.html").read_text()

    status, _, err = run(capsys, "report", "open", "cart")
    assert status == 2 and err.startswith("breakwater report open: error: no reports in")


def test_help_epilog_of_load_names_the_scenarios(capsys: pytest.CaptureFixture[str]) -> None:
    status, out, _ = run(capsys, "load", "--help")
    assert status == 0
    flat = " ".join(out.split())
    assert "--workers N" in flat and "flash-sale: buyers hammer the hot product" in flat


def test_experiment_export_writes_a_chaostoolkit_file(capsys: pytest.CaptureFixture[str],
                                                      tmp_path: Path) -> None:
    target = tmp_path / "cart-outage.json"
    status, _, err = run(capsys, "experiment", "export", "cart-outage", "--format",
                         "chaostoolkit", "-o", str(target), "--toxiproxy",
                         "http://127.0.0.1:1")
    assert status == 0 and "chaos run" in err
    document = json.loads(target.read_text())
    assert document["method"][0]["provider"]["func"] == "disable_proxy"
    assert document["method"][0]["provider"]["arguments"] == {"proxy_name": "cart"}


@pytest.mark.integration
def test_a_load_run_lands_in_the_index(capsys: pytest.CaptureFixture[str], reports: Path) -> None:
    from tests.support.upstreams import fake_upstreams

    with fake_upstreams(1) as (shop,):
        status, out, err = run(capsys, "load", "browse", "--users", "1", "--duration", "2s",
                               "--host", shop.url)
    assert status == 0, err
    [folder] = [p for p in reports.iterdir() if p.is_dir()]
    assert folder.name.endswith("-load-browse") and (folder / "load.json").exists()
    index = (reports / "index.html").read_text()
    assert f'href="{folder.name}/locust.html"' in index and "every run: " in out
