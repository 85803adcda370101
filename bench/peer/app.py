"""The peer: a Quix Streams exactly-once application doing the derive stage's job.

It reads the same three input topics, decodes with the project's decoders, runs the project's
pure derivation (``consumer.derive``) with order state in Quix's state store (RocksDB, its own
changelog topic) holding the project's encoded ``OrderState`` bytes unchanged, and writes the
encoded operations to an outbox topic keyed by merchant, in Kafka transactions. What it leaves
out (timers, dead-letter records, metrics) is what makes it the lighter of the two.

    PYTHONPATH=. bench/peer/.venv/bin/python bench/peer/app.py CONFIG_JSON
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import orjson
from quixstreams import Application, State
from quixstreams.models.serializers import Serializer
from quixstreams.state.rocksdb import RocksDBOptions

from bench.merchants import bench_merchants
from consumer.decode import RecordDecoder, SchemaCatalog
from consumer.derive import (
    DeriveConfig,
    derive_order,
    derive_return,
    derive_storefront_event,
)
from consumer.derive.outcome import Derivation
from consumer.devstack.stack import merchant_settings
from consumer.outbox import encode_operation
from consumer.settings import DeriveSettings
from consumer.state.shipments import decode_order_state, encode_order_state

Output = tuple[bytes, bytes]  # (merchant id, encoded operation)
_STATE = "order"


class _PayloadSerializer(Serializer):
    """Values are (key, payload) pairs; the payload is written as is."""

    def __call__(self, value: Output, ctx: Any) -> bytes:
        return value[1]


def _raw(value: bytes | str) -> bytes:
    """State keys are str (one per message key: ``_STATE``), values the encoded state."""
    return value if isinstance(value, bytes) else value.encode()


def _outputs(result: Derivation) -> list[Output]:
    return [(op.merchant_id.encode(), encode_operation(op)) for op in result.operations]


def build(config: dict[str, Any]) -> Application:
    """The application for ``config`` (bootstrap, group, topics, merchants, state dir)."""
    merchants = {m.merchant_id: merchant_settings(m) for m in bench_merchants(config["merchants"])}
    derive_config = DeriveConfig.from_settings(DeriveSettings())
    catalog = SchemaCatalog()
    app = Application(
        broker_address=config["bootstrap_servers"],
        consumer_group=config["group"],
        auto_offset_reset="earliest",
        processing_guarantee="exactly-once",
        commit_interval=1.0,  # as the service's checkpoint: every second or 5,000 records
        commit_every=5_000,
        state_dir=config["state_dir"],
        # State values are the project's encoded bytes, stored and changelogged unchanged.
        rocksdb_options=RocksDBOptions(dumps=_raw, loads=lambda v: v),
        loglevel="WARNING",
    )
    outbox = app.topic(
        config["outbox"], key_serializer="bytes", value_serializer=_PayloadSerializer()
    )

    def decoder_for(subject: str) -> Callable[[bytes], dict[str, Any]]:
        return RecordDecoder(catalog, subject, 1_000_000).decode

    def order(value: bytes, state: State) -> list[Output]:
        record = decoder_for_orders(value)
        merchant = merchants.get(str(record.get("merchant_id") or ""))
        stored = state.get(_STATE)  # Quix scopes state by the message key: the order id
        previous = decode_order_state(stored) if stored is not None else None
        result = derive_order(record, merchant, previous, datetime.now(UTC), derive_config)
        if result.state is not None:
            state.set(_STATE, encode_order_state(result.state))
        return _outputs(result)

    def stateless(
        decode: Callable[[bytes], dict[str, Any]],
        derive: Callable[..., Derivation],
    ) -> Callable[[bytes], list[Output]]:
        def run(value: bytes) -> list[Output]:
            record = decode(value)
            merchant = merchants.get(str(record.get("merchant_id") or ""))
            return _outputs(derive(record, merchant, datetime.now(UTC), derive_config))

        return run

    decoder_for_orders = decoder_for("orders")
    topics = config["topics"]
    orders = app.dataframe(app.topic(topics["orders"], value_deserializer="bytes"))
    orders.apply(order, stateful=True, expand=True).to_topic(outbox, key=lambda v: v[0])
    for field, subject, derive in (
        ("returns", "returns", derive_return),
        ("storefront_events", "storefront-events", derive_storefront_event),
    ):
        sdf = app.dataframe(app.topic(topics[field], value_deserializer="bytes"))
        sdf = sdf.apply(stateless(decoder_for(subject), derive), expand=True)
        sdf.to_topic(outbox, key=lambda v: v[0])
    return app


def main() -> None:
    """Run until SIGTERM."""
    build(orjson.loads(sys.argv[1])).run()


if __name__ == "__main__":
    main()
