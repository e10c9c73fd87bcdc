"""The order service's settings: `ORDER_*` (or shared `BREAKWATER_*`) environment variables."""

from __future__ import annotations

import dataclasses
from typing import ClassVar

from services.common.config import ServiceSettings
from services.common.service_identity import default_secret_file
from services.common.settings import SettingsError, var_dir


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
    # Auth issues order's own token (client credentials), for calls made without a shopper.
    auth_url: str = "http://127.0.0.1:5000"  # comma-separated instance URLs
    auth_connect_timeout: float = 0.5
    auth_read_timeout: float = 2.0
    # The secret order shares with auth (BREAKWATER_ORDER_SERVICE_SECRET, the same for both);
    # local mode generates it in the var folder's keys/ when neither is set.
    order_service_secret: str = ""
    order_service_secret_file: str = ""
    # The reconciler: a thread in every order process resolving stuck checkouts (off: tests).
    reconciler: bool = True
    reconcile_interval_seconds: float = 2.0
    # An order pending (untouched) for longer than this is stuck, not in progress.
    reconcile_grace_seconds: float = 10.0
    reconcile_batch: int = 20
    # How long after a confirmed order the reconciler keeps trying to take its lines out of the cart.
    cart_clear_window_seconds: float = 600.0
    # None: `python -m services.order` migrates, an imported create_app() does not.
    auto_migrate: bool | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        if not self.order_service_secret_file:
            object.__setattr__(self, "order_service_secret_file",
                               str(default_secret_file(var_dir(), "order")))
        if self.reconcile_interval_seconds <= 0 or self.reconcile_grace_seconds < 0:
            raise SettingsError("ORDER_RECONCILE_INTERVAL_SECONDS must be positive and "
                                "ORDER_RECONCILE_GRACE_SECONDS not negative")
        if not 1 <= self.reconcile_batch <= 1000:
            raise SettingsError("ORDER_RECONCILE_BATCH must be between 1 and 1000")
