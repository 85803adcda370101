"""Integration records: the Avro contract ``schemas/klaviyo-integrations`` in both directions.

Records are written in Avro single-object encoding with the catalog's newest schema, so a
reader needs no registry and older records stay readable after the schema evolves. Turning
a record into the ``MerchantSettings`` the service uses needs the keyring (the API key is
only ever stored encrypted).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

from consumer.decode import RecordDecoder, SchemaCatalog, encode_single_object
from consumer.integrations.crypto import EncryptedSecret, Keyring
from consumer.integrations.errors import IntegrationRecordError
from consumer.merchant import MerchantOptions, MerchantSettings

__all__ = ["SETTINGS_FIELDS", "SUBJECT", "IntegrationCodec", "IntegrationRecord"]

SUBJECT: Final = "klaviyo-integrations"
"""The schema subject (directory under ``schemas/``) of the integrations topic."""

SETTINGS_FIELDS: Final = MerchantOptions.names()
"""The non-secret settings, in schema order: what audit records may show old → new."""

# Integration records are tiny; anything near this is not one of ours.
_MAX_RECORD_BYTES: Final = 64 * 1024


@dataclass(frozen=True, slots=True, kw_only=True)
class IntegrationRecord(MerchantOptions):
    """One value on the integrations topic, API key still encrypted."""

    merchant_id: str
    api_key: EncryptedSecret
    updated_at: datetime
    updated_by: str

    @classmethod
    def from_settings(
        cls,
        settings: MerchantSettings,
        keyring: Keyring,
        *,
        updated_by: str,
        updated_at: datetime,
    ) -> IntegrationRecord:
        """Encrypt ``settings.api_key`` under the primary KEK and wrap the rest as a record."""
        return cls(
            merchant_id=settings.merchant_id,
            api_key=keyring.encrypt(settings.api_key, merchant_id=settings.merchant_id),
            updated_at=updated_at,
            updated_by=updated_by,
            **settings.options(),
        )

    def to_settings(self, keyring: Keyring) -> MerchantSettings:
        """The decrypted view the rest of the service uses.

        Raises:
            DecryptError: the API key cannot be decrypted with ``keyring``.
        """
        api_key = keyring.decrypt(self.api_key, merchant_id=self.merchant_id)
        return MerchantSettings(merchant_id=self.merchant_id, api_key=api_key, **self.options())

    @staticmethod
    def default_values() -> dict[str, object]:
        """The non-secret settings of a new merchant (the schema's defaults)."""
        return MerchantOptions.defaults()

    def settings_values(self) -> dict[str, object]:
        """The non-secret settings as a dict (``SETTINGS_FIELDS``)."""
        return self.options()

    def replace(self, **changes: Any) -> IntegrationRecord:
        """A copy with ``changes`` applied (``dataclasses.replace``)."""
        return dataclasses.replace(self, **changes)


class IntegrationCodec:
    """Bytes on the integrations topic ↔ ``IntegrationRecord``."""

    def __init__(self, catalog: SchemaCatalog | None = None) -> None:
        catalog = catalog or SchemaCatalog()
        self._writer = catalog.latest(SUBJECT).schema
        self._decoder = RecordDecoder(catalog, SUBJECT, _MAX_RECORD_BYTES)

    def encode(self, record: IntegrationRecord) -> bytes:
        """Single-object encoding under the newest schema."""
        secret = record.api_key
        doc = {
            "merchant_id": record.merchant_id,
            "api_key": {
                "kek_id": secret.kek_id,
                "wrapped_data_key": secret.wrapped_data_key,
                "nonce": secret.nonce,
                "ciphertext": secret.ciphertext,
            },
            "updated_at": record.updated_at,
            "updated_by": record.updated_by,
            **record.settings_values(),
        }
        return encode_single_object(self._writer, doc)

    def decode(self, payload: bytes) -> IntegrationRecord:
        """Decode one value (either framing the decoder accepts).

        Raises:
            DecodeError: the bytes are not a record of this subject (its ``reason`` says why).
            IntegrationRecordError: decodes, but is not a usable integration.
        """
        doc = self._decoder.decode(payload)
        try:
            secret = doc["api_key"]
            updated_at = doc["updated_at"]
            if isinstance(updated_at, int):  # written without the logical type
                updated_at = datetime.fromtimestamp(updated_at / 1000, UTC)
            record = IntegrationRecord(
                merchant_id=doc["merchant_id"],
                api_key=EncryptedSecret(
                    kek_id=secret["kek_id"],
                    wrapped_data_key=bytes(secret["wrapped_data_key"]),
                    nonce=bytes(secret["nonce"]),
                    ciphertext=bytes(secret["ciphertext"]),
                ),
                updated_at=updated_at,
                updated_by=doc["updated_by"],
                **{name: doc[name] for name in SETTINGS_FIELDS},
            )
        except (KeyError, TypeError) as exc:
            raise IntegrationRecordError(f"missing or invalid field: {exc}") from None
        if not record.merchant_id:
            raise IntegrationRecordError("empty merchant_id")
        return record
