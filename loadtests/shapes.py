"""Locust `LoadTestShape`s over the profiles of `loadtests.profiles`.

    FlashSaleShape(baseline_users=5, peak_users=80, baseline=10, jump=3, hold=30, after=10)

Importing this module imports Locust (and so gevent's monkey-patching): keep it out of
processes that are not load generators.
"""

from __future__ import annotations

from locust import LoadTestShape

from loadtests import profiles
from loadtests.profiles import Profile


class ProfileShape(LoadTestShape):
    """Runs a `Profile`: its user count per second, then stop."""

    abstract = True

    def __init__(self, profile: Profile) -> None:
        super().__init__()
        self.profile = profile

    def tick(self) -> tuple[int, float] | None:
        return self.profile.tick(self.get_run_time())


class SteadyShape(ProfileShape):
    """A constant number of users."""

    def __init__(self, **params: float) -> None:
        super().__init__(profiles.steady(**params))


class RampShape(ProfileShape):
    """A stepped ramp from one user count to another."""

    def __init__(self, **params: float) -> None:
        super().__init__(profiles.ramp(**params))


class FlashSaleShape(ProfileShape):
    """A quiet baseline, a jump to many users within seconds, a hold, a drop."""

    def __init__(self, **params: float) -> None:
        super().__init__(profiles.flash_sale(**params))


class ConstantRateShape(ProfileShape):
    """Enough paced users to offer a fixed request rate (open loop)."""

    def __init__(self, **params: float) -> None:
        super().__init__(profiles.constant_rate(**params))
