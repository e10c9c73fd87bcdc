"""checkout-nemesis at small scale against a real local stack: a few careful shoppers, a few
seconds of seeded crashes and network faults, then the audit — on SQLite, and on MariaDB
(mysql marker). The assertions are the audit's: the shop must have healed."""

from __future__ import annotations

import dataclasses
import json
import uuid
from collections.abc import Iterator
from pathlib import Path

import pymysql
import pytest

from chaos.experiments.model import Experiment, find
from chaos.experiments.nemesis import CRASHES, NemesisSchedule
from chaos.experiments.nemesis_run import nemesis_settings
from chaos.experiments.stack import LocalStack
from chaos.reports import run_and_report
from tests.support.databases import MYSQL, mysql_available

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]


SHOPPERS, PURCHASES = 10, 3


def order_dies_mid_checkout(schedule: NemesisSchedule) -> bool:
    """Whether order is killed while product's replies are held back (checkouts in flight
    inside order, waiting on product: the crash that leaves an order pending)."""
    held = [(s.at, s.until) for s in schedule.steps
            if s.target == "product" and s.kind in ("latency", "timeout")]
    return any(s.target == "order" and s.kind in CRASHES
               and any(start + 0.5 <= s.at <= end for start, end in held)
               for s in schedule.steps)


def small_nemesis() -> tuple[Experiment, int]:
    """The short variant, smaller still, and the first seed whose schedule kills a worker and
    a whole instance, has network faults on at least two links, and kills order while
    checkouts wait on product."""
    experiment = find("checkout-nemesis.short")
    experiment = dataclasses.replace(
        experiment, stack={**experiment.stack, "profile": None},
        load={**experiment.load, "duration": 12},
        options={**experiment.options, "shoppers": SHOPPERS, "purchases": PURCHASES,
                 "stock": 100, "purchase_s": 25, "tail_s": 15, "settle_s": 60,
                 "nemesis": {"start": 1, "crashes_per_minute": 18, "instance_share": 0.5}})
    for seed in range(1000):
        _, schedule = nemesis_settings(experiment, seed)
        kinds = {s.kind for s in schedule.steps}
        links = {s.target for s in schedule.steps if s.kind not in CRASHES}
        if {"kill_worker", "kill_instance"} <= kinds and len(links) >= 2 \
                and order_dies_mid_checkout(schedule):
            return experiment, seed
    raise AssertionError("no seed below 1000 gives a schedule with every kind of crash")


def run_small(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, db: str | None):
    var = tmp_path / "var"
    monkeypatch.setenv("BREAKWATER_VAR_DIR", str(var))
    experiment, seed = small_nemesis()
    stack = LocalStack(var, port_base=0, seed_products=4, seed_users=SHOPPERS)
    try:
        result = run_and_report(experiment, seed=seed, db=db, stack=stack,
                                reports_root=tmp_path / "reports", log=print, echo=False)
    finally:
        if stack.state() is not None:
            stack.down(log=lambda _: None)
    return experiment, seed, result


def assert_the_shop_healed(experiment: Experiment, seed: int, result) -> None:
    summary = result.summary
    # The run is the one its seed names, and its report shows it.
    _, schedule = nemesis_settings(experiment, seed)
    assert NemesisSchedule.from_json(summary["schedule"]) == schedule
    saved = json.loads((result.run_dir / "schedule.json").read_text())
    assert saved == schedule.to_json()
    assert [row[2] for row in summary["schedule_table"]["rows"]] == \
        [s.label() for s in schedule.steps]
    # Every planned fault was applied, but a crash of an instance that is itself still
    # restarting (nothing to kill), which is recorded as such.
    for row in summary["schedule_table"]["rows"]:
        assert row[3] is not None or "CrashError" in row[6], row
    assert (result.run_dir / "schedule.png").exists()
    html = (result.run_dir / "report.html").read_text()
    assert "Nemesis schedule" in html and "Audit" in html
    if any(s.kind == "kill_instance" for s in schedule.steps):
        assert sum(summary["restarts"].values()) >= 1, "the keeper restarted a killed instance"
    assert summary["shopping"]["purchases"] == SHOPPERS * PURCHASES
    # The audit, clause by clause.
    audit = summary["audit"]
    assert "error" not in audit, audit
    verdicts = {v.name: (v.status, v.detail) for v in result.verdicts}
    assert audit["oversold"] == 0, verdicts
    assert audit["unaccounted_units"] == 0, audit
    assert audit["unresolved_orders"] == 0, audit
    assert audit["keys_with_two_orders"] == 0, audit
    assert audit["told_confirmed_not_confirmed"] == 0, audit
    assert audit["confirmed_ratio"] >= 0.95, audit
    assert result.holds is True, verdicts


def test_checkout_survives_the_nemesis_on_sqlite(tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    experiment, seed, result = run_small(tmp_path, monkeypatch, None)
    assert result.summary["database"] == "sqlite"
    assert_the_shop_healed(experiment, seed, result)


@pytest.fixture
def mariadb_template() -> Iterator[str]:
    """A database URL template on the local MariaDB; its databases dropped afterwards."""
    if not mysql_available():
        pytest.skip("MariaDB/MySQL is not answering on 127.0.0.1:3306")
    prefix = f"bw_nemesis_{uuid.uuid4().hex[:8]}"
    yield f"mysql+pymysql://root@127.0.0.1:3306/{prefix}_{{service}}"
    connection = pymysql.connect(autocommit=True, **MYSQL)
    try:
        with connection.cursor() as cursor:
            cursor.execute("SHOW DATABASES LIKE %s", (f"{prefix}_%",))
            for (name,) in cursor.fetchall():
                cursor.execute(f"DROP DATABASE IF EXISTS `{name}`")
    finally:
        connection.close()


@pytest.mark.mysql
def test_checkout_survives_the_nemesis_on_mariadb(tmp_path: Path, mariadb_template: str,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    experiment, seed, result = run_small(tmp_path, monkeypatch, mariadb_template)
    assert result.summary["database"] == mariadb_template
    assert_the_shop_healed(experiment, seed, result)
