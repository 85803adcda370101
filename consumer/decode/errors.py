"""Why an input record could not be decoded; each ``reason`` becomes a dead-letter reason."""

from consumer.errors import ConsumerError

__all__ = [
    "CorruptAvro",
    "DecodeError",
    "EmptyPayload",
    "IncompatibleWriterSchema",
    "OversizedPayload",
    "SchemaRegistryUnavailable",
    "UnknownFingerprint",
    "UnknownMagicByte",
    "UnknownSchemaId",
]


class DecodeError(ConsumerError):
    """The payload cannot become a record; the record is dead-lettered with ``reason``."""

    reason = "decode_error"


class EmptyPayload(DecodeError):
    """No value, or fewer bytes than the framing header needs."""

    reason = "empty_payload"


class OversizedPayload(DecodeError):
    """The payload is larger than the configured maximum."""

    reason = "oversized_payload"


class UnknownMagicByte(DecodeError):
    """Neither Confluent framing (0x00) nor Avro single-object encoding (0xC3 0x01)."""

    reason = "unknown_magic_byte"


class UnknownSchemaId(DecodeError):
    """The Schema Registry does not know this schema id."""

    reason = "unknown_schema_id"


class UnknownFingerprint(DecodeError):
    """No schema version in ``schemas/`` has this CRC-64-AVRO fingerprint."""

    reason = "unknown_fingerprint"


class CorruptAvro(DecodeError):
    """The Avro body is truncated, has trailing bytes, or is not valid for its writer schema."""

    reason = "corrupt_avro"


class IncompatibleWriterSchema(DecodeError):
    """The writer schema cannot be resolved to this topic's reader schema."""

    reason = "incompatible_schema"


class SchemaRegistryUnavailable(ConsumerError):
    """The registry could not be asked (network, 5xx): retriable, never a dead-letter reason."""

    retriable = True
