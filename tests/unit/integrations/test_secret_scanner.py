"""The leak tests' secret scanner finds what it must, so a clean scan means something."""

from __future__ import annotations

import base64
import logging

import pytest

from consumer.kafka import ConsumedMessage
from tests.helpers.secrets import SecretScanner

KEY = "pk_scannerSelfTestQwErTyZx93"


@pytest.mark.parametrize(
    "leak",
    [
        KEY,
        f"key={KEY!r}",
        base64.b64encode(KEY.encode()).decode(),
        KEY.encode().hex(),
        "pk_…" + KEY[-8:],
        KEY[5:13],
    ],
)
def test_scanner_finds_secret_forms(leak: str) -> None:
    scanner = SecretScanner(KEY)
    scanner.add("output", f"prefix {leak} suffix")
    assert scanner.findings == ["secret #0 in output"]
    with pytest.raises(AssertionError) as caught:
        scanner.assert_clean()
    assert KEY not in str(caught.value)


def test_scanner_finds_secret_in_exception_chain() -> None:
    scanner = SecretScanner(KEY)
    inner = ValueError(KEY)
    outer = RuntimeError("wrapped")
    outer.__context__ = inner
    scanner.add_exception("crash", outer)
    assert scanner.findings


def test_scanner_finds_secret_in_log_args_and_extras() -> None:
    scanner = SecretScanner(KEY)
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "msg %s", ("ok",), None)
    record.api_key = KEY
    scanner.add_logs([record])
    assert scanner.findings


def test_scanner_finds_secret_in_topic_bytes() -> None:
    scanner = SecretScanner(KEY)
    message = ConsumedMessage("t", 0, 7, b"m1", b"\x00\x01" + KEY.encode(), (("h", b""),), -1)
    scanner.add_messages("topic", [message])
    assert scanner.findings == ["secret #0 in topic [0@7]"]


def test_scanner_clean_output_passes() -> None:
    scanner = SecretScanner(KEY)
    scanner.add("output", "kek k1 sha256:0123456789ab")
    scanner.assert_clean()


def test_scanner_with_nothing_scanned_fails() -> None:
    with pytest.raises(AssertionError, match="nothing was scanned"):
        SecretScanner(KEY).assert_clean()
