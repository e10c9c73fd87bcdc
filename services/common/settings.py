"""Typed settings read from the environment, one object per process.

A field `database_url` of a service whose prefix is `PRODUCT` is read from
`PRODUCT_DATABASE_URL`, then from `BREAKWATER_DATABASE_URL` (shared by every process of a
stack), then falls back to the field's default. No other module reads `os.environ`.
"""

from __future__ import annotations

import dataclasses
import os
import types
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TypeVar

S = TypeVar("S", bound="Settings")

TRUE_WORDS = frozenset({"1", "true", "yes", "on"})
FALSE_WORDS = frozenset({"0", "false", "no", "off", ""})


class SettingsError(ValueError):
    """An environment variable holds a value of the wrong type."""


def project_root() -> Path:
    """The folder holding `services/` (the checkout, the installed packages, or the image's)."""
    return Path(__file__).resolve().parents[2]


def var_dir() -> Path:
    """Where local mode keeps databases, keys, pids, logs and traces: `BREAKWATER_VAR_DIR`,
    else `./var` in the working directory, whatever way Breakwater was installed."""
    return Path(os.environ.get("BREAKWATER_VAR_DIR") or "var").absolute()


def _parse_bool(name: str, raw: str) -> bool:
    word = raw.strip().lower()
    if word in TRUE_WORDS:
        return True
    if word in FALSE_WORDS:
        return False
    raise SettingsError(f"{name}={raw!r} is not a boolean: use one of on/off, true/false, 1/0")


def _coerce(name: str, raw: Any, kind: Any) -> Any:
    if not isinstance(raw, str):
        return raw
    if isinstance(kind, types.UnionType) or typing.get_origin(kind) is typing.Union:
        args = [a for a in typing.get_args(kind) if a is not type(None)]
        if raw == "":
            return None
        kind = args[0]
    try:
        if kind is bool:
            return _parse_bool(name, raw)
        if kind is int:
            return int(raw)
        if kind is float:
            return float(raw)
        if typing.get_origin(kind) is tuple:
            return tuple(part.strip() for part in raw.split(",") if part.strip())
    except ValueError as exc:
        raise SettingsError(f"{name}={raw!r} is not a valid {kind.__name__}: {exc}") from exc
    return raw


@dataclasses.dataclass(frozen=True)
class Settings:
    """Base of every process's settings; subclasses add fields and set `prefix`."""

    prefix: typing.ClassVar[str] = "BREAKWATER"

    @classmethod
    def from_env(
        cls: type[S],
        overrides: Mapping[str, Any] | None = None,
        environ: Mapping[str, str] | None = None,
    ) -> S:
        """Read every field from the environment; `overrides` (field names) win over it."""
        environ = os.environ if environ is None else environ
        overrides = dict(overrides or {})
        hints = typing.get_type_hints(cls)
        values: dict[str, Any] = {}
        for field in dataclasses.fields(cls):
            if field.name in overrides:
                values[field.name] = _coerce(field.name, overrides.pop(field.name), hints[field.name])
                continue
            for key in (f"{cls.prefix}_{field.name.upper()}", f"BREAKWATER_{field.name.upper()}"):
                if key in environ:
                    values[field.name] = _coerce(key, environ[key], hints[field.name])
                    break
        unknown = sorted(overrides)
        if unknown:
            raise SettingsError(f"unknown settings for {cls.__name__}: {', '.join(unknown)}")
        return cls(**values)
