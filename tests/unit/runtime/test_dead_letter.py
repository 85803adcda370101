"""Dead-letter records: original headers kept (prefixed), and every record fits its budget."""

from __future__ import annotations

from consumer.kafka import ConsumedMessage, Header
from consumer.runtime.dead_letter import (
    H_MESSAGE,
    H_OFFSET,
    H_ORIGINAL_HEADER,
    H_ORIGINAL_SIZE,
    H_PARTITION,
    H_TOPIC,
    FailedRecord,
    failure_record,
    original_headers,
    record_budget,
    record_size,
)

FAILURE = FailedRecord("oversized_payload", "OversizedPayload", "too big", "merchant-1")
BUDGET = record_budget(1_048_576)


def message(
    value: bytes, key: bytes = b"order-1", headers: tuple[Header, ...] = ()
) -> ConsumedMessage:
    return ConsumedMessage("orders", 1, 7, key, value, headers, 0)


def test_a_record_that_fits_keeps_key_value_and_its_headers_prefixed() -> None:
    source = message(b"payload", headers=(("trace-id", b"t-1"), ("origin", b"")))
    record = failure_record(source, "derive", FAILURE, BUDGET)
    assert (record.key, record.value) == (b"order-1", b"payload")
    assert (H_ORIGINAL_HEADER + "trace-id", b"t-1") in record.headers
    assert all(name != H_ORIGINAL_SIZE for name, _ in record.headers)
    replayed = ConsumedMessage("dlq", 0, 0, record.key, record.value, tuple(record.headers), 0)
    assert original_headers(replayed) == [("trace-id", b"t-1"), ("origin", b"")]


def test_an_oversized_value_is_cut_to_fit_and_says_its_size_and_source() -> None:
    value = bytes(range(256)) * 4_300  # 1,100,800 bytes
    source = message(value, headers=(("trace-id", b"t-1"),))
    record = failure_record(source, "derive", FAILURE, BUDGET)
    headers = dict(record.headers)
    assert headers[H_ORIGINAL_SIZE] == b"1100800"
    assert (headers[H_TOPIC], headers[H_PARTITION], headers[H_OFFSET]) == (b"orders", b"1", b"7")
    assert record.value is not None and value.startswith(record.value)
    assert record_size(record.key, record.value, record.headers) <= BUDGET
    assert BUDGET - record_size(record.key, record.value, record.headers) < 100
    assert headers[H_ORIGINAL_HEADER + "trace-id"] == b"t-1"


def test_original_headers_that_do_not_fit_are_dropped_and_a_huge_key_is_cut() -> None:
    big_header = ("blob", b"h" * 900_000)
    source = message(b"v" * 10, key=b"k" * 700_000, headers=(big_header,))
    record = failure_record(source, "derive", FAILURE, BUDGET)
    assert record_size(record.key, record.value, record.headers) <= BUDGET
    assert all(not name.startswith(H_ORIGINAL_HEADER) for name, _ in record.headers)
    assert record.key == b"k" * 1024
    assert record.value == b"v" * 10
    assert dict(record.headers)[H_ORIGINAL_SIZE] == b"10"


def test_a_long_error_message_is_capped() -> None:
    failure = FailedRecord("internal_error", "ValueError", "x" * 50_000)
    record = failure_record(message(b"v"), "derive", failure, BUDGET)
    assert len(dict(record.headers)[H_MESSAGE]) == 2000
