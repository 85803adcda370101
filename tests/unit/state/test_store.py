"""The transaction overlay of the state store: commit keeps writes, abort rewinds them."""

from __future__ import annotations

from consumer.state.store import StateStore


def restored(store: StateStore[str], records: list[tuple[str, bytes | None]]) -> StateStore[str]:
    """``store`` owning partition 0, restored from ``records`` (changelog order)."""
    partition = store.empty()
    for key, value in records:
        partition.restore(key.encode(), value)
    store.install(0, partition)
    return store


def make_store() -> StateStore[str]:
    store: StateStore[str] = StateStore(decode=bytes.decode, encode=str.encode)
    return restored(store, [("a", b"1"), ("b", b"2"), ("b", None), ("c", b"3")])


def test_store_restore_applies_tombstones_and_last_value() -> None:
    assert dict(make_store().partition(0).items()) == {"a": "1", "c": "3"}


def test_store_abort_rewinds_open_transaction() -> None:
    store = make_store()
    part = store.partition(0)
    part.put("a", "9")
    part.put("c", None)
    assert part.get("a") == "9" and part.get("c") is None
    store.abort()
    assert dict(part.items()) == {"a": "1", "c": "3"}
    assert list(store.changelog_records()) == []


def test_store_commit_keeps_writes_and_lists_each_key_once() -> None:
    store = make_store()
    part = store.partition(0)
    part.put("a", "8")
    part.put("a", "9")
    part.put("c", None)
    assert sorted(store.changelog_records(), key=lambda r: r[1]) == [
        (0, b"a", b"9"),
        (0, b"c", None),
    ]
    store.commit()
    assert dict(part.items()) == {"a": "9"}
    assert list(store.changelog_records()) == []


def test_store_drop_forgets_partition() -> None:
    store = make_store()
    store.drop([0])
    assert store.owned() == []


def test_store_keeps_committed_values_encoded_and_counts_their_bytes() -> None:
    decoded: list[bytes] = []

    def decode(data: bytes) -> str:
        decoded.append(data)
        return data.decode()

    store = restored(StateStore(decode=decode, encode=str.encode), [("a", b"11"), ("b", b"2")])
    store.partition(0).restore(b"a", b"111")
    part = store.partition(0)
    assert decoded == []  # a restore copies bytes, it does not decode
    assert (len(part), part.committed_bytes) == (2, 4)
    assert part.get("a") == "111" and decoded == [b"111"]
    part.put("b", None)
    part.put("c", "33")
    store.commit()
    assert (len(part), part.committed_bytes) == (2, 5)
    keys = part.keys()
    assert sorted(keys.between(0, len(keys))) == ["a", "c"]


class Counted:
    """A codec that counts its calls (text values)."""

    def __init__(self) -> None:
        self.decoded = 0
        self.encoded = 0

    def decode(self, data: bytes) -> str:
        self.decoded += 1
        return data.decode()

    def encode(self, value: str) -> bytes:
        self.encoded += 1
        return value.encode()


def counted_store(cache_size: int = 10) -> tuple[StateStore[str], Counted]:
    codec = Counted()
    store = StateStore(codec.decode, codec.encode, cache_size=cache_size)
    return restored(store, [("a", b"1"), ("b", b"2")]), codec


def test_store_keeps_recently_read_values_decoded_within_its_bound() -> None:
    store, codec = counted_store(cache_size=1)
    part = store.partition(0)
    assert [part.get("a"), part.get("a"), part.get("a")] == ["1"] * 3
    assert codec.decoded == 1  # a busy key is decoded once
    part.get("b")  # the bound is one entry: "a" makes way
    part.get("a")
    assert codec.decoded == 3


def test_store_scans_peek_without_flushing_the_cache() -> None:
    store, codec = counted_store(cache_size=1)
    part = store.partition(0)
    part.get("a")
    assert part.peek("b") == "2" and part.peek("b") == "2"
    assert codec.decoded == 3  # peeks decode each time ...
    part.get("a")
    assert codec.decoded == 3  # ... and left "a" cached


def test_store_cache_follows_put_commit_and_abort() -> None:
    store, _ = counted_store()
    part = store.partition(0)
    assert part.get("a") == "1"  # cached
    part.put("a", "9")
    assert part.get("a") == "9"  # the open transaction's value, not the cached one
    store.abort()
    assert part.get("a") == "1"  # the cache held the committed value only
    part.put("a", "8")
    part.put("b", None)
    store.commit()
    assert (part.get("a"), part.get("b")) == ("8", None)
    assert dict(part.items()) == {"a": "8"}


def test_store_restore_replaces_a_cached_value_and_drop_forgets_it() -> None:
    store, _ = counted_store()
    part = store.partition(0)
    assert part.get("a") == "1"
    part.restore(b"a", b"7")
    assert part.get("a") == "7"
    part.restore(b"a", None)
    assert part.get("a") is None
    store.drop([0])
    store.install(0, store.empty())  # assigned again: restored from the changelog afresh
    assert store.partition(0).get("b") is None


def test_store_writes_the_encoding_it_was_given_and_encodes_the_rest_once() -> None:
    store, codec = counted_store()
    part = store.partition(0)
    part.put("a", "9", b"9")  # encoded by the caller (for its size check)
    part.put("b", "5")
    records = sorted(store.changelog_records(), key=lambda r: r[1])
    assert records == [(0, b"a", b"9"), (0, b"b", b"5")]
    store.commit()
    assert codec.encoded == 1  # only "b", once for the changelog and the committed state
    assert (part.get("a"), part.get("b")) == ("9", "5")
