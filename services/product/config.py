"""Settings of the product service, read from `PRODUCT_*` (or the shared `BREAKWATER_*`)."""

from __future__ import annotations

import dataclasses
from typing import ClassVar

from services.common.config import ServiceSettings
from services.common.settings import SettingsError


@dataclasses.dataclass(frozen=True)
class ProductSettings(ServiceSettings):
    """Product's own fields: catalog defaults, reservation holds, and simulated work."""

    prefix: ClassVar[str] = "PRODUCT"
    service_name: ClassVar[str] = "product"
    default_port: ClassVar[int] = 5002

    currency: str = "EUR"
    # Units a product gets when created without `stock` (the seed's curl sends none).
    default_stock: int = 100
    # How long reserved units are held before they return to the shelf unconfirmed: a checkout
    # confirms within seconds, so an abandoned one must not keep stock "sold out" for long.
    hold_ttl_seconds: int = 60
    # How often each process returns the units of expired holds (0: only when reserving).
    hold_sweep_interval_seconds: float = 5.0
    # Units one user may hold at once, over all their unconfirmed reservations (0: no cap).
    max_held_units_per_user: int = 200
    # Load experiments: a slow downstream (sleep) and CPU work (busy loop) per product read.
    simulated_delay_ms: int = 0
    simulated_cpu_ms: int = 0
    # None means "not set": `python -m services.product` migrates then, gunicorn does not.
    auto_migrate: bool | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        object.__setattr__(self, "currency", self.currency.strip().upper())
        for name in ("default_stock", "simulated_delay_ms", "simulated_cpu_ms", "hold_sweep_interval_seconds",
                     "max_held_units_per_user"):
            if getattr(self, name) < 0:
                raise SettingsError(f"PRODUCT_{name.upper()} must not be negative")
        if not 1 <= self.hold_ttl_seconds <= 86_400:
            raise SettingsError("PRODUCT_HOLD_TTL_SECONDS must be between 1 and 86400 seconds")
