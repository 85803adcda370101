"""``ParkRegistry``: parks per merchant or endpoint, cool-down expiry, key-change lifting."""

from __future__ import annotations

from pydantic import SecretStr

from consumer.deliver.parking import ParkRegistry, key_fingerprint
from consumer.klaviyo import BULK_CREATE_EVENTS, BULK_SUBSCRIBE_PROFILES

EVENTS, SUBS = BULK_CREATE_EVENTS, BULK_SUBSCRIBE_PROFILES


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_merchant_park_covers_every_endpoint_until_the_cooldown_ends() -> None:
    clock = Clock()
    parks = ParkRegistry(60.0, clock)
    parks.park("m", None, "unauthorized")
    assert parks.active("m", EVENTS) is not None
    assert parks.active("m", SUBS) is not None
    assert parks.active("other", EVENTS) is None
    clock.now = 60.0
    assert parks.active("m", EVENTS) is None
    assert parks.parks() == []


def test_endpoint_park_leaves_the_other_endpoint_open() -> None:
    parks = ParkRegistry(60.0, Clock())
    parks.park("m", SUBS, "missing_scope", "needs subscriptions:write")
    park = parks.active("m", SUBS)
    assert park is not None and park.detail == "needs subscriptions:write"
    assert parks.active("m", EVENTS) is None


def test_a_different_key_lifts_a_key_caused_park() -> None:
    parks = ParkRegistry(60.0, Clock())
    old, new = SecretStr("pk_old_key_0001"), SecretStr("pk_new_key_0002")
    parks.park("m", None, "unauthorized", fingerprint=key_fingerprint(old))
    assert parks.active("m", EVENTS, lambda: key_fingerprint(old)) is not None
    assert parks.active("m", EVENTS, lambda: key_fingerprint(new)) is None
    assert parks.active("m", EVENTS, lambda: key_fingerprint(old)) is None  # lifted for good


def test_fingerprint_does_not_reveal_the_key() -> None:
    key = "pk_secret_key_0001"
    assert key not in key_fingerprint(SecretStr(key))
