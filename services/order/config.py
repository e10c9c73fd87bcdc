"""The order service's settings: `ORDER_*` (or shared `BREAKWATER_*`) environment variables."""

from __future__ import annotations

import dataclasses
from typing import ClassVar

from services.common.config import ServiceSettings


@dataclasses.dataclass(frozen=True)
class OrderSettings(ServiceSettings):
    """Where cart and product live and how patiently checkout waits for them."""

    prefix: ClassVar[str] = "ORDER"
    service_name: ClassVar[str] = "order"
    default_port: ClassVar[int] = 5004

    cart_url: str = "http://127.0.0.1:5003"  # comma-separated instance URLs
    cart_connect_timeout: float = 0.5
    cart_read_timeout: float = 2.0
    cart_max_concurrent: int = 16
    product_url: str = "http://127.0.0.1:5002"  # comma-separated instance URLs
    product_connect_timeout: float = 0.5
    product_read_timeout: float = 3.0
    product_max_concurrent: int = 16
    # None: `python -m services.order` migrates, an imported create_app() does not.
    auto_migrate: bool | None = None
