"""Input bytes → records: framing, the schema catalog, the registry client and decoders."""

from consumer.decode.catalog import SchemaCatalog, SchemaVersion, canonical_fingerprint
from consumer.decode.decoder import RecordDecoder
from consumer.decode.errors import (
    CorruptAvro,
    DecodeError,
    EmptyPayload,
    IncompatibleWriterSchema,
    OversizedPayload,
    SchemaRegistryUnavailable,
    UnknownFingerprint,
    UnknownMagicByte,
    UnknownSchemaId,
)
from consumer.decode.framing import Frame, encode_confluent, encode_single_object, parse_frame
from consumer.decode.registry import SchemaRegistryClient

__all__ = [
    "CorruptAvro",
    "DecodeError",
    "EmptyPayload",
    "Frame",
    "IncompatibleWriterSchema",
    "OversizedPayload",
    "RecordDecoder",
    "SchemaCatalog",
    "SchemaRegistryClient",
    "SchemaRegistryUnavailable",
    "SchemaVersion",
    "UnknownFingerprint",
    "UnknownMagicByte",
    "UnknownSchemaId",
    "canonical_fingerprint",
    "encode_confluent",
    "encode_single_object",
    "parse_frame",
]
