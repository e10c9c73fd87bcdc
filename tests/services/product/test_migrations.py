"""product's migrations: they build exactly the models' schema, and go down and up again."""

from __future__ import annotations

import flask_migrate
import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect

from services.product.models import db

pytestmark = pytest.mark.timeout(60)


def test_migrations_match_the_models_and_downgrade_cleanly(app):
    with app.app_context():
        with db.engine.connect() as connection:
            assert compare_metadata(MigrationContext.configure(connection), db.metadata) == []
        flask_migrate.downgrade(revision="base")
        assert set(inspect(db.engine).get_table_names()) <= {"alembic_version"}
        flask_migrate.upgrade()
        assert set(db.metadata.tables) <= set(inspect(db.engine).get_table_names())
