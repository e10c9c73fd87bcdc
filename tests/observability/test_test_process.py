"""The test process's own calls start sampled traces, whatever app a test builds inside it.

A service's `create_app` sets tracing up for the process it runs in, and under pytest that is the
test runner. Set up by such an app, the runner's `requests` calls carried its own trace context,
which Breakwater's default sampler had dropped (a root client span), so a traced process under
test that a later test in the same worker started recorded nothing of the request: the OTLP
export tests failed that way whenever such a test ran before them. `tests.support.tracing` now
sets the runner's tracing up first, the same in every worker.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import requests

from tests.support.upstreams import fake_upstreams


@pytest.mark.parametrize("service", ["product", "order"])
def test_calls_of_the_test_process_start_sampled_traces_after_an_app_is_built_in_it(
        service: str, tmp_path: Path) -> None:
    module = __import__(f"services.{service}", fromlist=["create_app"])
    app = module.create_app({"database_url": f"sqlite:///{tmp_path / 'db.sqlite'}",
                             "auto_migrate": True})
    assert app.test_client().get("/healthz").status_code == 200

    with fake_upstreams() as [upstream]:
        headers = requests.get(f"{upstream.url}/anything", timeout=5).json()["headers"]

    version, _trace_id, _parent, flags = headers["Traceparent"].split("-")
    assert version == "00" and int(flags, 16) & 1, headers["Traceparent"]
