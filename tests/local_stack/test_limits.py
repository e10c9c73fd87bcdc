"""The CPU limits data module: profiles, `--cpus` parsing, quotas."""

from __future__ import annotations

import pytest

from local_stack import limits


def test_experiments_profile_covers_every_service() -> None:
    cpus = limits.profile("experiments")
    assert set(cpus) == set(limits.SERVICES)
    assert cpus["product"] == 0.25 and cpus["gateway"] == 1.0


def test_overrides_win_over_the_profile() -> None:
    cpus = limits.resolve("experiments", {"product": 0.5})
    assert cpus["product"] == 0.5 and cpus["cart"] == 0.5
    assert limits.resolve(None, {"gateway": 1.0}) == {"gateway": 1.0}


@pytest.mark.parametrize("text", ["product", "search=1", "product=fast", "product=0", "cart=100"])
def test_bad_cpus_are_refused(text: str) -> None:
    with pytest.raises(limits.LimitsError):
        limits.parse_cpus(text)


def test_parse_and_quota() -> None:
    assert limits.parse_cpus("product=0.25") == ("product", 0.25)
    assert limits.quota_us(0.25) == 25_000
    assert limits.quota_us(1.5, 50_000) == 75_000


def test_unknown_profile() -> None:
    with pytest.raises(limits.LimitsError, match="experiments"):
        limits.profile("turbo")
