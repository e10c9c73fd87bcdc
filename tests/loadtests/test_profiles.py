"""Load profiles: user counts over time, phases, open-loop pacing, durations."""

from __future__ import annotations

import pytest

from loadtests.profiles import (
    build_profile,
    constant_rate,
    flash_sale,
    parse_duration,
    ramp,
    steady,
)


def test_steady_holds_its_users_then_stops() -> None:
    profile = steady(users=12, duration=30)
    assert profile.tick(0) == (12, pytest.approx(6.0))
    assert profile.tick(29.9)[0] == 12
    assert profile.tick(30) is None
    assert not profile.open_loop


def test_flash_sale_jumps_within_seconds_holds_and_drops() -> None:
    profile = flash_sale(baseline_users=5, peak_users=85, baseline=10, jump=2, hold=20, after=5)
    assert profile.tick(3)[0] == 5
    users, spawn_rate = profile.tick(10.5)
    assert users == 85 and spawn_rate == pytest.approx(40.0)  # 80 users in 2 s
    assert profile.tick(25)[0] == 85
    assert profile.tick(33)[0] == 5
    assert profile.tick(37) is None
    assert [p.name for p in profile.phases()] == ["baseline", "spike", "hold", "after"]
    assert profile.phase_at(15) == "hold"
    assert profile.duration == 37


def test_ramp_climbs_in_even_steps() -> None:
    profile = ramp(start_users=0, end_users=40, duration=20, steps=5)
    counts = [profile.tick(t)[0] for t in (0, 4, 8, 12, 16)]
    assert counts == [0, 10, 20, 30, 40]
    assert profile.tick(20) is None


def test_constant_rate_is_open_loop_with_enough_users() -> None:
    profile = constant_rate(rate=120, duration=10, warmup=2)
    assert profile.open_loop and profile.rate == 120
    assert profile.peak_users == 60
    assert profile.per_user_rate() == pytest.approx(2.0)
    assert profile.describe()["mode"] == "open-loop"
    assert profile.duration == 12


def test_build_profile_scales_every_duration() -> None:
    profile = build_profile("flash-sale", users=30, scale=0.5, baseline=10, jump=2, hold=20,
                            after=4)
    assert profile.duration == pytest.approx(18)
    assert build_profile("steady", users=3, duration=60, scale=0.25).duration == 15
    assert build_profile("steady", rate=50, duration=10).open_loop  # --rate means open loop


def test_build_profile_rejects_nonsense() -> None:
    with pytest.raises(ValueError, match="unknown shape"):
        build_profile("zigzag")
    with pytest.raises(ValueError, match="--rate"):
        build_profile("rate")
    with pytest.raises(ValueError, match="greater than 0"):
        steady(users=0)


@pytest.mark.parametrize(("text", "seconds"), [("60s", 60), ("2m", 120), ("1m30s", 90),
                                               ("45", 45), (12, 12), ("1h", 3600)])
def test_parse_duration(text: str | int, seconds: float) -> None:
    assert parse_duration(text) == seconds


def test_parse_duration_refuses_garbage() -> None:
    with pytest.raises(ValueError):
        parse_duration("soon")


def test_a_rate_is_refused_for_a_closed_loop_scenario_and_required_for_an_open_one() -> None:
    from loadtests.runner import LoadSpec

    with pytest.raises(ValueError, match="closed loop.*catalog"):
        LoadSpec(scenario="hot-reads", rate=50).profile()
    with pytest.raises(ValueError, match="open loop: give it --rate"):
        LoadSpec(scenario="catalog", shape="steady").profile()
    assert LoadSpec(scenario="catalog", rate=50, duration=10).profile().open_loop
