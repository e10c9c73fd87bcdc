"""`breakwater logs` reading, the progress display, and the CLI's parsing."""

from __future__ import annotations

import io
import json
import threading
from pathlib import Path

import pytest

from breakwater import cli, stack_cli
from local_stack.logs import LogsError, follow, last_lines, log_files
from local_stack.progress import ConsoleProgress


def write_logs(folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "product-1.log").write_text(
        json.dumps({"ts": "2026-01-01T10:00:01Z", "message": "one"}) + "\n"
        + json.dumps({"ts": "2026-01-01T10:00:03Z", "message": "three"}) + "\n")
    (folder / "product-2.log").write_text(
        "[2026-01-01 10:00:02 +0000] [7] [INFO] two\n")
    (folder / "product-10.log").write_text("")
    (folder / "cart.log").write_text("a\nb\nc\n")


def test_a_service_means_all_its_replicas_interleaved_by_time(tmp_path: Path) -> None:
    write_logs(tmp_path)
    files = log_files(tmp_path, "product")
    assert list(files) == ["product-1", "product-2", "product-10"]
    lines = last_lines(files, 10)
    assert [line.partition(" | ")[0] for line in lines] == ["product-1", "product-2", "product-1"]
    assert "two" in lines[1]


def test_an_instance_means_its_own_log(tmp_path: Path) -> None:
    write_logs(tmp_path)
    assert last_lines(log_files(tmp_path, "cart"), 2) == ["b", "c"]
    assert list(log_files(tmp_path, "product-2")) == ["product-2"]
    with pytest.raises(LogsError, match="known: cart"):
        log_files(tmp_path, "order")


def test_follow_yields_new_lines(tmp_path: Path) -> None:
    write_logs(tmp_path)
    files = log_files(tmp_path, "cart")
    seen: list[str] = []
    done = threading.Event()

    lines = follow(files, poll=0.01, stop=done.is_set)  # from the current end of the files

    def reader() -> None:
        for line in lines:
            seen.append(line)
            if len(seen) == 2:
                done.set()

    thread = threading.Thread(target=reader)
    thread.start()
    with open(files["cart"], "a") as handle:
        handle.write("d\ne")
        handle.flush()
        handle.write("\n")
    thread.join(timeout=5)
    done.set()
    assert seen == ["d", "e"]


def test_plain_progress_prints_one_line_per_step() -> None:
    stream = io.StringIO()
    progress = ConsoleProgress(stream)
    with progress.step("fault proxy") as step:
        step.update("http://127.0.0.1:8474")
    with pytest.raises(RuntimeError), progress.step("gateway"):
        raise RuntimeError("boom")
    lines = stream.getvalue().splitlines()
    assert lines[0] == "... fault proxy"
    assert lines[1].startswith("[ ok ] fault proxy — http://127.0.0.1:8474")
    assert lines[3].startswith("[FAIL] gateway")


def parse(*argv: str):
    import argparse

    parser = argparse.ArgumentParser(prog="breakwater")
    stack_cli.register(parser.add_subparsers(dest="command", required=True))
    return parser.parse_args(argv)


def test_up_options_parse() -> None:
    args = parse("up", "--product-replicas", "3", "--resilience", "off", "--port-base", "0",
                 "--cpus", "product=0.25", "--cpus", "gateway=1", "--db",
                 "mysql+pymysql://root@127.0.0.1:3306/bw_{service}")
    assert args.product_replicas == 3 and args.resilience == "off" and args.port_base == 0
    assert args.cpus == [("product", 0.25), ("gateway", 1.0)]


def test_scale_and_logs_parse() -> None:
    assert parse("scale", "product=3").target == ("product", 3)
    args = parse("logs", "product", "-f", "-n", "5")
    assert (args.service, args.follow, args.lines) == ("product", True, 5)
    with pytest.raises(SystemExit):
        parse("scale", "product")
    with pytest.raises(SystemExit):
        parse("up", "--cpus", "product=lots")


def test_status_and_down_without_a_stack(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    var = str(tmp_path / "var")
    assert cli.main(["status", "--var-dir", var]) == 3
    assert cli.main(["down", "--var-dir", var]) == 0
    assert cli.main(["scale", "product=2", "--var-dir", var]) == 2
    out = capsys.readouterr()
    assert "no stack" in out.out and "breakwater up" in out.err


def test_table_aligns_columns() -> None:
    assert stack_cli.table([["A", "BB"], ["ccc", "d"]]) == "A    BB\nccc  d"


class FakeTerminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_terminal_progress_ticks_on_one_line() -> None:
    stream = FakeTerminal()
    with ConsoleProgress(stream, interval=0.001).step("waiting until ready") as step:
        step.update("2/5 ready")
        threading.Event().wait(0.02)  # let the ticker draw a few frames
    text = stream.getvalue()
    assert "\r\x1b[2K" in text and text.endswith("\n")
    assert "[ ok ] waiting until ready — 2/5 ready" in text
