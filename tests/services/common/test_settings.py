"""Settings read from the environment with typed defaults."""

from __future__ import annotations

import dataclasses
from typing import ClassVar

import pytest

from services.common.config import ServiceSettings
from services.common.settings import SettingsError


@dataclasses.dataclass(frozen=True)
class ShopSettings(ServiceSettings):
    prefix: ClassVar[str] = "SHOP"
    service_name: ClassVar[str] = "shop"
    default_port: ClassVar[int] = 5999
    page_size: int = 20
    ratio: float = 0.5
    product_url: tuple[str, ...] = ("http://127.0.0.1:5002",)


def test_defaults_fill_in_service_specific_values(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("BREAKWATER_VAR_DIR", str(tmp_path))
    settings = ShopSettings.from_env(environ={})
    assert settings.port == 5999
    assert settings.database_url == f"sqlite:///{tmp_path / 'shop.db'}"
    assert settings.instance_id == "shop" and settings.resilience is True


def test_prefixed_variable_wins_over_shared_one() -> None:
    settings = ShopSettings.from_env(environ={
        "SHOP_RESILIENCE": "off", "BREAKWATER_RESILIENCE": "on", "BREAKWATER_PAGE_SIZE": "7",
        "SHOP_RATIO": "0.25", "SHOP_PRODUCT_URL": "http://a:1, http://b:2",
    })
    assert settings.resilience is False and settings.page_size == 7 and settings.ratio == 0.25
    assert settings.product_url == ("http://a:1", "http://b:2")


def test_overrides_win_over_the_environment() -> None:
    settings = ShopSettings.from_env({"page_size": 3}, environ={"SHOP_PAGE_SIZE": "9"})
    assert settings.page_size == 3


@pytest.mark.parametrize(("key", "value", "fragment"), [
    ("SHOP_PAGE_SIZE", "many", "SHOP_PAGE_SIZE='many' is not a valid int"),
    ("SHOP_RESILIENCE", "maybe", "is not a boolean"),
])
def test_bad_values_say_which_variable_is_wrong(key: str, value: str, fragment: str) -> None:
    with pytest.raises(SettingsError, match=fragment):
        ShopSettings.from_env(environ={key: value})


def test_unknown_override_is_refused() -> None:
    with pytest.raises(SettingsError, match="unknown settings for ShopSettings: colour"):
        ShopSettings.from_env({"colour": "blue"}, environ={})
