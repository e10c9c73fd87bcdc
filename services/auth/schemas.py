"""Marshmallow schemas of auth: request validation and the OpenAPI document."""

from __future__ import annotations

import functools
import re
import unicodedata
from pathlib import Path
from typing import Any

from marshmallow import Schema, ValidationError, fields, validate

EMAIL_MAX = 254
NAME_MAX = 100
PASSWORD_MIN, PASSWORD_MAX = 8, 128  # the upper bound keeps hashing cheap to refuse


COMMON_PASSWORDS_FILE = Path(__file__).resolve().parent / "data" / "common_passwords.txt"
# Control, format (bidi overrides, zero-width joiners, BOM), surrogate, private-use and
# unassigned characters, and line/paragraph separators: nothing a name needs, and each can
# make a name display as something else.
HIDDEN_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"})
# Letters and marks that draw nothing (Hangul fillers, braille blank, combining grapheme joiner).
BLANK_LOOKING = frozenset("\u115f\u1160\u3164\uffa0\u2800\u034f")


def _has_unstorable(value: str) -> bool:
    # Lone surrogates cannot be encoded as UTF-8 for the database or the hash.
    return any(unicodedata.category(char) == "Cs" for char in value)


def _has_hidden(value: str) -> bool:
    return any(unicodedata.category(c) in HIDDEN_CATEGORIES or c in BLANK_LOOKING for c in value)


@functools.cache
def common_passwords() -> frozenset[str]:
    """The shipped list of common passwords, lower-cased."""
    lines = COMMON_PASSWORDS_FILE.read_text(encoding="utf-8").splitlines()
    return frozenset(line.strip().lower() for line in lines if line.strip() and not line.startswith("#"))


def not_common(password: str) -> None:
    """Refuse a password from the common-password list (case does not matter)."""
    if password.strip().lower() in common_passwords():
        raise ValidationError(
            "This password is one of the most common ones and would be guessed first; "
            "choose another (a few unrelated words work well)."
        )


class Text(fields.String):
    """A string with surrounding blanks removed; control, bidi and invisible characters refused."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> str:
        text = super()._deserialize(value, attr, data, **kwargs).strip()
        if _has_hidden(text):
            raise ValidationError(
                "Must not contain control, direction-changing or invisible characters.")
        return text


class Secret(fields.String):
    """A password: taken exactly as typed, but it must be encodable."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> str:
        text = super()._deserialize(value, attr, data, **kwargs)
        if _has_unstorable(text):
            raise ValidationError("Must not contain unpaired surrogate characters.")
        return text


class EmailAddress(fields.Email):
    """An email address, normalised to lower case before it is validated."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> str:
        text = super()._deserialize(value, attr, data, **kwargs).strip().lower()
        if _has_hidden(text) or re.search(r"\s", text):
            raise ValidationError("Not a valid email address.")
        return text


class RegisterSchema(Schema):
    """A new account."""

    email = EmailAddress(required=True, validate=validate.Length(max=EMAIL_MAX))
    password = Secret(
        required=True, load_only=True,
        validate=[validate.Length(min=PASSWORD_MIN, max=PASSWORD_MAX), not_common],
    )
    name = Text(required=True, validate=validate.Length(min=1, max=NAME_MAX))


class LoginSchema(Schema):
    """Credentials to exchange for an access token."""

    email = EmailAddress(required=True, validate=validate.Length(max=EMAIL_MAX))
    password = Secret(required=True, load_only=True, validate=validate.Length(min=1, max=PASSWORD_MAX))


class UserSchema(Schema):
    """A user as others may see them (never the password hash)."""

    id = fields.Integer(required=True)
    email = fields.String(required=True)
    name = fields.String(required=True)
    membership = fields.String(required=True, metadata={"description": "membership level"})
    created_at = fields.DateTime(required=True)


class AccessTokenSchema(Schema):
    """The answer to a successful login."""

    access_token = fields.String(required=True)
    token_type = fields.String(required=True, metadata={"example": "Bearer"})
    expires_in = fields.Integer(required=True, metadata={"description": "seconds"})
    user = fields.Nested(UserSchema, required=True)


class JwkSchema(Schema):
    """One public key as a JSON Web Key (OKP / Ed25519)."""

    kty = fields.String(required=True)
    crv = fields.String(required=True)
    x = fields.String(required=True)
    kid = fields.String(required=True)
    alg = fields.String(required=True)
    use = fields.String(required=True)


class JwksSchema(Schema):
    """The key set verifiers fetch from `/.well-known/jwks.json`."""

    keys = fields.List(fields.Nested(JwkSchema), required=True)
