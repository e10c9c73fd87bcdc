"""Run reports: plots, summary.json, report.html and the listing of runs (chaos.reports)."""

from __future__ import annotations

import json
from pathlib import Path

from chaos.experiments.measurements import Request
from chaos.experiments.runner import RunRecord, RunResult
from chaos.experiments.runs import new_run_dir
from chaos.experiments.verdicts import PASS, Verdict
from chaos.reports import write_report, write_run_report
from chaos.reports.runs import find_run, list_runs


def fixture_requests() -> list[Request]:
    rows = []
    for tenth in range(200):
        t = tenth / 10
        down = 8 <= t < 14
        rows.append(Request(t, "GET", "/api/v1/products/[id]", "catalog", 200, 4 + tenth % 7,
                            "ok", "", f"{tenth:032x}"))
        rows.append(Request(t, "GET", "/api/v1/cart", "cart", 503 if down else 200,
                            2 if down else 6, "failure" if down else "ok",
                            "cart_unavailable" if down else "", f"{tenth + 1000:032x}"))
    return rows


def test_report_from_fixture_data(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("BREAKWATER_REPORTS_DIR", str(tmp_path / "reports"))
    monkeypatch.delenv("JAEGER_URL", raising=False)
    monkeypatch.delenv("BREAKWATER_JAEGER_URL", raising=False)
    run_dir = new_run_dir("cart-outage")
    verdict = Verdict("breaker opens", "breaker_opens_within", PASS, 0.8, 2.0, "opened 0.80 s")
    samples = [{"t": t / 5, "probe": "gateway_upstreams", "body": {"upstreams": {"cart": {
        "instances": [{"breaker": "open" if 9 <= t / 5 < 17 else "closed"}]}}}}
        for t in range(100)]
    summary = {"experiment": "cart-outage", "resilience": True, "mode": "closed-loop",
               "verdicts": [verdict.as_dict()], "hypothesis_holds": True,
               "groups": {"fault": {"cart": {"requests": 60, "failures": 60, "expected": 0,
                                             "error_rate": 1.0, "rps": 10.0, "p50_ms": 2,
                                             "p95_ms": 2, "p99_ms": 2}}}}
    html = write_report(run_dir, summary, requests=fixture_requests(), samples=samples,
                        faults=[{"target": "cart", "kind": "down", "start": 8.0, "end": 14.0}])
    for name in ("latency.png", "throughput.png", "errors.png", "breakers.png"):
        assert (run_dir / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    written = json.loads((run_dir / "summary.json").read_text())
    assert written["verdicts"][0]["status"] == "PASS"
    assert written["verdicts"][0]["measured"] == 0.8
    assert len(written["traces"]["failed"]) == 10
    assert written["traces"]["slowest"][0]["ms"] == 10
    page = html.read_text()
    assert "hypothesis: PASS" in page and "latency.png" in page and "breakers.png" in page
    runs = list_runs()
    assert runs[0]["verdict"] == "PASS" and runs[0]["name"] == "cart-outage"
    assert find_run("cart-outage") == run_dir


def test_report_links_traces_to_jaeger_when_configured(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("JAEGER_URL", "http://127.0.0.1:16686")
    run_dir = tmp_path / "run"
    write_report(run_dir, {"experiment": "x"}, requests=fixture_requests())
    written = json.loads((run_dir / "summary.json").read_text())
    assert written["traces"]["failed"][0]["link"].startswith("http://127.0.0.1:16686/trace/")


def test_a_scaling_run_gets_its_scaling_and_open_loop_plots(tmp_path: Path) -> None:
    steps = [{"label": f"product-{n}", "kind": "product", "replicas": n, "ok_rps": 30.0 * n,
              "p95_ms": 200.0} for n in (1, 2, 3)]
    steps += [{"label": f"open-{n}", "kind": "open-loop", "replicas": n, "offered_rate": 45.0,
               "ok_rps": min(45.0, 30.0 * n), "p95_ms": 900.0 if n == 1 else 220.0,
               "load_factor": 1.5, "judged": True} for n in (1, 3)]
    summary = {"experiment": "product-scaling", "steps": steps, "p95_bound_ms": 400,
               "hypothesis_holds": True}
    result = RunResult("product-scaling", True, tmp_path / "run", summary, [], RunRecord())
    (tmp_path / "run").mkdir()
    page = write_run_report(result).read_text()
    for name in ("scaling.png", "open-loop.png"):
        assert (tmp_path / "run" / name).read_bytes()[:4] == b"\x89PNG"
        assert name in page
    assert json.loads((tmp_path / "run" / "summary.json").read_text())["p95_bound_ms"] == 400


def test_every_value_is_escaped_in_the_page(tmp_path: Path) -> None:
    """The page comes from an autoescaped template: a summary's text is data, never markup."""
    hostile = "<script>alert('x')</script>"
    run_dir = tmp_path / "reports" / "20260101-000000-hostile"
    verdict = Verdict(hostile, "error_rate", PASS, 0.0, 0.0, f"detail {hostile}")
    write_report(run_dir, {"experiment": hostile, "description": hostile,
                           "verdicts": [verdict.as_dict()], "notes": [hostile],
                           "hypothesis_holds": True})
    page = (run_dir / "report.html").read_text()
    assert "<script>" not in page
    assert page.count("&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;") >= 4
    assert "hypothesis: PASS" in page and '<a href="../index.html">every run</a>' in page


def test_the_index_lists_every_run_and_is_rewritten_with_each_report(tmp_path: Path,
                                                                      monkeypatch) -> None:
    root = tmp_path / "reports"
    monkeypatch.setenv("BREAKWATER_REPORTS_DIR", str(root))
    monkeypatch.delenv("JAEGER_URL", raising=False)
    first = new_run_dir("cart-outage", now=1_767_225_600)
    write_report(first, {"experiment": "cart-outage", "hypothesis_holds": False,
                         "started_at": "2026-01-01 00:00:00", "resilience": False,
                         "stack": {"product_replicas": 1, "capacity_bounded": True}})
    load = new_run_dir("load-browse", now=1_767_225_700)
    (load / "load.json").write_text(json.dumps({"scenario": "browse", "started": 1_767_225_700,
                                                "requests": 10, "failures": 0}))
    (load / "locust.html").write_text("<html></html>")
    (root / "20260101-000300-load-nonexistent").mkdir()   # a refused run: nothing in it
    (root / "notes").mkdir()                               # something else's folder
    (root / "notes" / "todo.txt").write_text("x")

    assert [run["run"] for run in list_runs()] == [load.name, first.name]
    second = new_run_dir("flash-sale-integrity", now=1_767_225_800)
    write_report(second, {"experiment": "flash-sale-integrity", "hypothesis_holds": True,
                          "started_at": "2026-01-01 00:05:00", "resilience": True,
                          "product_replicas": 2})

    index = (root / "index.html").read_text()
    rows = [line for line in index.splitlines() if line.startswith("<tr><td>")]
    assert len(rows) == 3, rows
    assert "flash-sale-integrity" in rows[0] and "PASS" in rows[0]
    assert "2026-01-01 00:05:00" in rows[0] and "resilience on, product ×2" in rows[0]
    assert f'href="{second.name}/report.html"' in rows[0]
    assert "browse" in rows[1] and "ok" in rows[1] and f'href="{load.name}/locust.html"' in rows[1]
    assert "FAIL" in rows[2] and "resilience off, product ×1, CPU quotas" in rows[2]
    assert "load-nonexistent" not in index and "notes" not in index
    assert find_run() == second


def test_the_templates_ship_as_package_data() -> None:
    import tomllib

    from chaos.reports.html import environment

    assert set(environment().list_templates()) >= {"base.html", "report.html", "index.html"}
    data = tomllib.loads((Path(__file__).resolve().parents[2] / "pyproject.toml").read_text())
    patterns = data["tool"]["setuptools"]["package-data"]["*"]
    assert "templates/*" in patterns


def test_a_nemesis_report_shows_its_schedule_on_the_timeline_and_its_audit(
        tmp_path: Path, monkeypatch) -> None:
    from chaos.experiments.nemesis import NemesisParams, plan_nemesis

    monkeypatch.setenv("BREAKWATER_REPORTS_DIR", str(tmp_path / "reports"))
    run_dir = new_run_dir("checkout-nemesis")
    schedule = plan_nemesis(3, NemesisParams(duration=20))
    faults = [{"target": s.target, "kind": s.kind, "label": s.label(), "start": s.at,
               "end": s.at if s.until is None else s.until} for s in schedule.steps]
    requests = [Request(t / 10, "POST", "/api/v1/orders", "checkout",
                        504 if t % 9 == 0 else 201, 80.0, "failure" if t % 9 == 0 else "ok")
                for t in range(200)]
    summary = {"experiment": "checkout-nemesis", "kind": "nemesis", "seed": 3,
               "schedule_lines": schedule.describe(), "settled_after_s": 4.5,
               "settle_limit_s": 60.0, "hypothesis_holds": False,
               "audit_table": {"headers": ["measure", "value"],
                               "rows": [["unaccounted_units", 7], ["unresolved_orders", 2]]},
               "schedule_table": {"headers": ["at s", "fault"],
                                  "rows": [[s.at, s.label()] for s in schedule.steps]}}
    result = RunResult("checkout-nemesis", False, run_dir, summary,
                       record=RunRecord(requests, [], faults))
    page = write_run_report(result).read_text()
    assert (run_dir / "schedule.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "schedule.png" in page and "Nemesis schedule (seed 3)" in page
    assert "--seed 3" in page and "unaccounted_units" in page
    assert schedule.describe()[0].strip() in page
    assert "Schedule as carried out" in page and "hypothesis: FAIL" in page
