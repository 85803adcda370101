"""``dev broker`` arguments: one node by default, a cluster on request, never zero nodes."""

from __future__ import annotations

import pytest

from consumer.cli.main import build_parser


def test_one_broker_unless_asked() -> None:
    args = build_parser().parse_args(["dev", "broker"])

    assert (args.brokers, args.port) == (1, 9092)


def test_brokers_asks_for_a_cluster() -> None:
    args = build_parser().parse_args(["dev", "broker", "--brokers", "3", "--port", "19092"])

    assert (args.brokers, args.port) == (3, 19092)


@pytest.mark.parametrize("count", ["0", "-1", "three"])
def test_brokers_must_be_a_positive_count(count: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        build_parser().parse_args(["dev", "broker", "--brokers", count])

    assert exited.value.code == 2
    assert "--brokers" in capsys.readouterr().err
