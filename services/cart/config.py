"""The cart service's settings: `CART_*` (or shared `BREAKWATER_*`) environment variables."""

from __future__ import annotations

import dataclasses
from typing import ClassVar

from services.common.config import ServiceSettings


@dataclasses.dataclass(frozen=True)
class CartSettings(ServiceSettings):
    """Where product lives and how patiently cart waits for it."""

    prefix: ClassVar[str] = "CART"
    service_name: ClassVar[str] = "cart"
    default_port: ClassVar[int] = 5003

    product_url: str = "http://127.0.0.1:5002"  # comma-separated instance URLs
    product_connect_timeout: float = 0.5
    product_read_timeout: float = 2.0
    product_max_concurrent: int = 16
    # None: `python -m services.cart` migrates, an imported create_app() does not.
    auto_migrate: bool | None = None
