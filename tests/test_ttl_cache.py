"""The lookup cache: entries expire, the oldest make room, a zero lifetime keeps nothing."""

from __future__ import annotations

import time

from loadbay.ttl_cache import TtlCache


def test_an_entry_is_served_until_it_expires() -> None:
    cache: TtlCache[str, int] = TtlCache(0.05)
    cache.put("a", 1)

    assert cache.get("a") == 1
    time.sleep(0.06)
    assert cache.get("a") is None


def test_the_oldest_entry_makes_room_when_full() -> None:
    cache: TtlCache[str, int] = TtlCache(60, max_entries=2)
    for number, key in enumerate("abc"):
        cache.put(key, number)

    assert (cache.get("a"), cache.get("b"), cache.get("c")) == (None, 1, 2)


def test_discard_clear_and_a_zero_lifetime() -> None:
    cache: TtlCache[str, int] = TtlCache(60)
    cache.put("a", 1)
    cache.put("b", 2)
    cache.discard("a")
    assert (cache.get("a"), cache.get("b")) == (None, 2)
    cache.clear()
    assert cache.get("b") is None
    off: TtlCache[str, int] = TtlCache(0)
    off.put("a", 1)
    assert off.get("a") is None
