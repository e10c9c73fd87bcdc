"""Rates and percentiles from the gateway's real `/metrics` text, as Prometheus computes them."""

from __future__ import annotations

import math

import pytest

from console.sources.traffic import (
    TrafficSeries,
    group_figures,
    histogram_quantile,
    increase,
    parse_scrape,
)
from gateway.metrics import GatewayMetrics


def scrape_of(metrics: GatewayMetrics, at: float):
    return parse_scrape(metrics.render().decode(), at)


def test_rates_errors_and_percentiles_per_group_between_two_scrapes() -> None:
    metrics = GatewayMetrics()
    metrics.observe("cart", "cart", "GET", 200, 0.004)
    before = scrape_of(metrics, 100.0)
    for _ in range(8):
        metrics.observe("cart", "cart", "GET", 200, 0.004)  # bucket (0.0025, 0.005]
    for _ in range(2):
        metrics.observe("cart", "cart", "GET", 503, 0.2)  # bucket (0.1, 0.25]
    for _ in range(5):
        metrics.observe("products", "product", "GET", 200, 0.02)
    after = scrape_of(metrics, 102.0)
    figures = group_figures(after, before)
    cart = figures["cart"]
    assert cart["rate"] == pytest.approx(5.0) and cart["errors"] == pytest.approx(1.0)
    assert cart["error_ratio"] == pytest.approx(0.2)
    # p50: rank 5 of 10 lies in (2.5 ms, 5 ms] holding 8 → 2.5 + 2.5 * 5/8 ms
    assert cart["p50"] == pytest.approx(2.5 + 2.5 * 5 / 8, abs=0.01)
    # p95: rank 9.5 lies in (100 ms, 250 ms] holding the 2 slow ones → 100 + 150 * 1.5/2
    assert cart["p95"] == pytest.approx(100 + 150 * 0.75, abs=0.01)
    assert figures["products"]["rate"] == pytest.approx(2.5)
    assert figures["products"]["errors"] == 0 and figures["products"]["error_ratio"] == 0


def test_histogram_quantile_follows_prometheus() -> None:
    buckets = [(0.1, 0.0), (0.2, 10.0), (math.inf, 10.0)]
    assert histogram_quantile(0.5, buckets) == pytest.approx(0.15)
    assert histogram_quantile(0.99, [(0.1, 1.0), (math.inf, 2.0)]) == 0.1  # +Inf: highest bound
    assert histogram_quantile(0.5, [(0.1, 0.0), (math.inf, 0.0)]) is None
    assert histogram_quantile(0.5, []) is None


def test_a_restarted_gateway_is_a_counter_reset_not_a_negative_rate() -> None:
    assert increase(3.0, 10.0) == 3.0 and increase(12.0, 10.0) == 2.0 and increase(4.0, None) == 4.0
    old = GatewayMetrics()
    for _ in range(50):
        old.observe("cart", "cart", "GET", 200, 0.01)
    fresh = GatewayMetrics()
    for _ in range(6):
        fresh.observe("cart", "cart", "GET", 200, 0.01)
    figures = group_figures(scrape_of(fresh, 11.0), scrape_of(old, 10.0))
    assert figures["cart"]["rate"] == pytest.approx(6.0)


def test_the_series_smooths_over_its_window_and_restarts_after_a_pause() -> None:
    metrics = GatewayMetrics()
    series = TrafficSeries(window=2.0)
    assert series.add(scrape_of(metrics, 0.0)) is None
    for second in range(1, 5):
        for _ in range(10):
            metrics.observe("products", "product", "GET", 200, 0.01)
        point = series.add(scrape_of(metrics, float(second)))
        assert point is not None and point["groups"]["products"]["rate"] == pytest.approx(10.0)
    assert len(series.history()) == 4
    assert series.add(scrape_of(metrics, 100.0)) is None  # nobody watched: no rate across it
