"""`flask --app services.auth admin create | revoke | list`: the only way to make an admin.

Registering never grants admin rights (whatever the email); an operator with access to auth's
database runs this command where auth runs: on the host in local mode (`breakwater admin
create` calls it), `docker compose exec auth flask --app services.auth admin create …` in
compose, `kubectl exec deploy/auth -- flask --app services.auth admin create …` in Kubernetes.
"""

from __future__ import annotations

import sys

import click
from flask import current_app
from flask.cli import AppGroup
from marshmallow import ValidationError

from services.auth import domain
from services.auth.routes import HASHER_KEY
from services.auth.schemas import RegisterSchema

admin_cli = AppGroup("admin", help="Make, list and revoke admin accounts.")


def _password(from_stdin: bool, existing: bool) -> str | None:
    if from_stdin:
        return sys.stdin.readline().rstrip("\r\n") or None
    if existing:
        return None  # promoting keeps the password unless one is given
    return click.prompt("Password", hide_input=True, confirmation_prompt=True)


@admin_cli.command("create")
@click.argument("email")
@click.option("--name", default="Admin", show_default=True, help="the account's display name")
@click.option("--password-stdin", is_flag=True,
              help="read the password from the first line of standard input (no prompt)")
def create_admin(email: str, name: str, password_stdin: bool) -> None:
    """Create the admin account EMAIL, or promote it if it exists (its password is replaced
    only when one is given)."""
    from services.auth.models import User, db

    existing = db.session.scalar(db.select(User.id).where(User.email == email.strip().lower()))
    password = _password(password_stdin, existing is not None)
    submitted = {"email": email, "name": name, **({"password": password} if password else {})}
    try:
        # The same rules as for a shopper (a new admin's password is checked like any other).
        fields = RegisterSchema(partial=("password",)).load(submitted)
    except ValidationError as exc:
        problems = "; ".join(f"{field}: {' '.join(map(str, messages))}"
                             for field, messages in exc.normalized_messages().items())
        raise click.UsageError(problems) from None
    try:
        user, created = domain.make_admin(fields["email"], fields["name"], password,
                                          hasher=current_app.extensions[HASHER_KEY])
    except ValueError as exc:
        raise click.UsageError(f"{exc} (--password-stdin, or answer the prompt)") from None
    click.echo(f"{'created' if created else 'promoted'} admin {user.email} (id {user.id})")


@admin_cli.command("revoke")
@click.argument("email")
def revoke_admin(email: str) -> None:
    """Make the admin EMAIL an ordinary shopper again (tokens already issued keep their
    membership until they expire)."""
    user = domain.revoke_admin(email.strip().lower())
    if user is None:
        raise click.UsageError(f"no account {email}")
    click.echo(f"{user.email} is no longer an admin")


@admin_cli.command("list")
def list_admins() -> None:
    """Every admin account."""
    for user in domain.admins():
        click.echo(f"{user.id}\t{user.email}\t{user.name}")
