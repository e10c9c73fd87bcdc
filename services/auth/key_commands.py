"""`flask --app services.auth keys show | rotate`: the published key set and its rotation."""

from __future__ import annotations

import click
from flask import current_app
from flask.cli import AppGroup

from services.auth.keys import KEYS_KEY, KeyRing, rotate_keys
from services.common.settings import SettingsError

keys_cli = AppGroup("keys", help="Show or rotate the token signing keys.")


@keys_cli.command("show")
def show_keys() -> None:
    """The key ids auth publishes now, and which one signs."""
    ring: KeyRing = current_app.extensions[KEYS_KEY]
    keys = ring.keys()
    click.echo(f"current\t{keys.kid}\t(signs every new token)")
    for label, pem in (("next", keys.next_public_pem), ("previous", keys.previous_public_pem)):
        if pem:
            from services.common.tokens import key_id

            click.echo(f"{label}\t{key_id(pem)}")


@keys_cli.command("rotate")
def rotate() -> None:
    """Promote the next key to current and make a new next key; the retired key stays
    published until the tokens it signed have expired."""
    settings = current_app.config["SETTINGS"]
    try:
        retired, current, upcoming = rotate_keys(settings)
    except SettingsError as exc:
        raise click.UsageError(str(exc)) from None
    click.echo(f"rotated: {retired} retired (published for {settings.token_ttl_seconds} s more), "
               f"{current} signs now, {upcoming} is next")
