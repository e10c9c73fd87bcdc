"""The stale catalog cache: bounded by entries and bytes, and never older than its limit."""

from __future__ import annotations

from gateway.fallback import StaleCache

HEADERS = [("Content-Type", "application/json")]


def make_cache(**limits) -> tuple[StaleCache, list[float]]:
    now = [0.0]
    return StaleCache(clock=lambda: now[0], **limits), now


def test_a_stored_response_comes_back_with_its_age():
    cache, now = make_cache()
    cache.store("/api/v1/products?page=1", HEADERS, b"[1]")
    now[0] = 42.7
    entry, age = cache.lookup("/api/v1/products?page=1")
    assert (entry.body, entry.headers, age) == (b"[1]", tuple(HEADERS), 42)
    assert cache.lookup("/api/v1/products?page=2") is None


def test_entries_older_than_the_limit_are_not_served():
    cache, now = make_cache(max_age=60)
    cache.store("/a", HEADERS, b"x")
    now[0] = 61
    assert cache.lookup("/a") is None
    assert cache.stats() == {"entries": 0, "bytes": 0}


def test_the_least_recently_used_entry_goes_first_when_full():
    cache, _ = make_cache(max_entries=2)
    cache.store("/a", HEADERS, b"a")
    cache.store("/b", HEADERS, b"b")
    cache.lookup("/a")
    cache.store("/c", HEADERS, b"c")
    assert cache.lookup("/b") is None
    assert cache.lookup("/a") and cache.lookup("/c")


def test_the_byte_bound_holds_and_oversized_responses_are_not_kept():
    cache, _ = make_cache(max_bytes=1000)
    for key in "abcdef":
        cache.store(f"/{key}", [], b"x" * 300)
    assert cache.stats()["bytes"] <= 1000
    assert cache.stats()["entries"] == 3
    cache.store("/huge", [], b"x" * 5000)
    assert cache.lookup("/huge") is None


def test_replacing_an_entry_keeps_the_byte_count_right():
    cache, _ = make_cache()
    cache.store("/a", [], b"x" * 100)
    cache.store("/a", [], b"x" * 10)
    assert cache.stats() == {"entries": 1, "bytes": 10}
