"""Alembic's environment for the auth service: the one every service shares."""

from services.common.migrations import run_environment

run_environment()
