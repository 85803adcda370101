"""The transaction overlay of the state store: commit keeps writes, abort rewinds them."""

from __future__ import annotations

from consumer.state.store import StateStore


def restored(store: StateStore[str], records: list[tuple[str, bytes | None]]) -> StateStore[str]:
    """``store`` owning partition 0, restored from ``records`` (changelog order)."""
    partition = store.empty()
    for key, value in records:
        partition.restore(key, value)
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
    store.partition(0).restore("a", b"111")
    part = store.partition(0)
    assert decoded == []  # a restore copies bytes, it does not decode
    assert (len(part), part.committed_bytes) == (2, 4)
    assert part.get("a") == "111" and decoded == [b"111"]
    part.put("b", None)
    part.put("c", "33")
    store.commit()
    assert (len(part), part.committed_bytes) == (2, 5)
    assert sorted(part.keys()) == ["a", "c"]
