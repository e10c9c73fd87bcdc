"""One database per service from the `--db` template."""

from __future__ import annotations

from pathlib import Path

import pytest

from local_stack.databases import DatabaseError, database_url, validate_template
from local_stack.stack import StackError, StackOptions


def test_sqlite_is_a_file_per_service_in_var(tmp_path: Path) -> None:
    assert database_url("sqlite", "cart", tmp_path) == f"sqlite:///{tmp_path}/cart.db"


def test_a_template_names_each_service_database() -> None:
    template = "mysql+pymysql://root@127.0.0.1:3306/bw_{service}"
    assert database_url(template, "order", ".") == "mysql+pymysql://root@127.0.0.1:3306/bw_order"


@pytest.mark.parametrize("template", ["mysql+pymysql://root@127.0.0.1/shared", "bw_{service}"])
def test_templates_that_cannot_work_are_refused(template: str) -> None:
    with pytest.raises(DatabaseError):
        validate_template(template)
    with pytest.raises(StackError):
        StackOptions(db=template).validate()


def test_options_are_checked_before_anything_starts() -> None:
    with pytest.raises(StackError, match="product-replicas"):
        StackOptions(product_replicas=0).validate()
    with pytest.raises(StackError, match="profile"):
        StackOptions(profile="turbo").validate()
    with pytest.raises(StackError, match="port base"):
        StackOptions(port_base=80).validate()
    assert StackOptions(cpus={"product": 0.5}).service_cpus()["product"] == 0.5
