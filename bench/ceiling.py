"""The ceiling: how fast this machine reads the input at all, and reads plus Avro-decodes it.

Runs in its own interpreter (``python -m bench.ceiling``) like the jobs it bounds, through the
same consumer facade and decoders the derive stage uses: one read without decoding, then one
with (each on a fresh consumer), and prints one JSON line.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from typing import Any

import orjson

from bench.stack import ROOT
from consumer.decode import RecordDecoder, SchemaCatalog
from consumer.kafka import CatchUp, KafkaConsumer, TopicPartition, partition_count
from consumer.settings import Settings

__all__ = ["measure_ceiling"]

_SUBJECTS = {"orders": "orders", "returns": "returns", "storefront_events": "storefront-events"}


def read_all(bootstrap: str, topics: dict[str, str], decode: bool) -> dict[str, Any]:
    """Read every record of ``topics`` (field → topic name) once; returns count and rate."""
    settings = Settings(kafka={"bootstrap_servers": bootstrap}).kafka
    decoders = {
        topic: RecordDecoder(SchemaCatalog(), _SUBJECTS[field], 1_000_000)
        for field, topic in topics.items()
    }
    partitions = [
        TopicPartition(t, p) for t in topics.values() for p in range(partition_count(settings, t))
    ]
    consumer = KafkaConsumer(settings, "bench-ceiling")
    count = 0
    try:
        catch_up = CatchUp.start(consumer, partitions)
        started = time.monotonic()
        while not catch_up.done:
            messages = consumer.consume(1000, 0.2)
            if decode:
                for message in messages:
                    decoders[message.topic].decode(message.value)
            count += len(messages)
            catch_up.advance()
        seconds = time.monotonic() - started
    finally:
        consumer.close()
    return {"records": count, "seconds": seconds, "rec_per_s": count / seconds}


def measure_ceiling(bootstrap: str, topics: dict[str, str]) -> dict[str, dict[str, Any]]:
    """Both reads in a fresh interpreter: ``{"consume": ..., "decode": ...}`` (``read_all``)."""
    argv = [sys.executable, "-m", "bench.ceiling", bootstrap, orjson.dumps(topics).decode()]
    done = subprocess.run(argv, cwd=ROOT, capture_output=True, check=True, timeout=600)
    result: dict[str, dict[str, Any]] = orjson.loads(done.stdout.splitlines()[-1])
    return result


def main() -> None:
    """``python -m bench.ceiling BOOTSTRAP TOPICS_JSON``."""
    parser = argparse.ArgumentParser()
    parser.add_argument("bootstrap")
    parser.add_argument("topics", type=orjson.loads)
    args = parser.parse_args()
    result = {
        "consume": read_all(args.bootstrap, args.topics, decode=False),
        "decode": read_all(args.bootstrap, args.topics, decode=True),
    }
    print(orjson.dumps(result).decode())


if __name__ == "__main__":
    main()
