"""Alembic's environment for the cart service: the one every service shares."""

from services.common.migrations import run_environment

run_environment()
