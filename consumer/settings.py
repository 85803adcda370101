"""One typed, frozen settings tree for the whole service.

Sources, highest priority first: constructor arguments, environment variables
(``KLAVIYO_CONSUMER_`` prefix, ``__`` between levels, e.g.
``KLAVIYO_CONSUMER_KAFKA__BOOTSTRAP_SERVERS``),
secret files (any setting ``X`` may instead be given as ``X_FILE=/path``, read and stripped),
an optional TOML file named by ``KLAVIYO_CONSUMER_SETTINGS_FILE``, then defaults.
Unknown keys are rejected. Secrets are ``SecretStr`` and print as ``**********``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator
from pydantic_settings import (
    BaseSettings,
    EnvSettingsSource,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from consumer.errors import ConfigError

__all__ = [
    "DeliverySettings",
    "DeriveSettings",
    "HttpSettings",
    "IntegrationsSettings",
    "KafkaSettings",
    "KlaviyoSettings",
    "LoggingSettings",
    "SchemaRegistrySettings",
    "Settings",
    "TopicSettings",
    "load_settings",
]

ENV_PREFIX = "KLAVIYO_CONSUMER_"
NESTED = "__"
FILE_SUFFIX = "_FILE"


class _Section(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class KafkaSettings(_Section):
    """Connection to the Kafka cluster (all client roles share it)."""

    bootstrap_servers: str = Field("127.0.0.1:9092", description="Comma-separated host:port list.")
    client_id: str = Field("klaviyo-consumer", description="client.id prefix for every client.")
    security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = Field(
        "PLAINTEXT", description="librdkafka security.protocol."
    )
    sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] | None = Field(
        None, description="SASL mechanism when security_protocol is SASL_*."
    )
    sasl_username: str | None = Field(None, description="SASL user name.")
    sasl_password: SecretStr | None = Field(None, description="SASL password (secret).")
    ssl_ca_location: Path | None = Field(None, description="CA bundle to verify the brokers.")
    ssl_certificate_location: Path | None = Field(None, description="Client certificate (mTLS).")
    ssl_key_location: Path | None = Field(None, description="Client private key (mTLS).")
    ssl_key_password: SecretStr | None = Field(None, description="Password of the client key.")
    group_id: str = Field(
        "klaviyo-consumer", description="Consumer group prefix; stages append -derive / -deliver."
    )
    group_instance_id: str | None = Field(
        None, description="Static membership id (defaults to the host name when running in a pod)."
    )
    session_timeout_ms: int = Field(45_000, ge=6_000, description="Consumer session timeout.")
    transaction_timeout_ms: int = Field(
        60_000, ge=1_000, description="Producer transaction timeout."
    )

    def to_librdkafka(self) -> dict[str, str]:
        """The librdkafka connection properties (secrets in plain text: never log this)."""
        conf: dict[str, str] = {
            "bootstrap.servers": self.bootstrap_servers,
            "client.id": self.client_id,
            "security.protocol": self.security_protocol,
        }
        optional: dict[str, str | None] = {
            "sasl.mechanism": self.sasl_mechanism,
            "sasl.username": self.sasl_username,
            "sasl.password": self.sasl_password.get_secret_value() if self.sasl_password else None,
            "ssl.ca.location": str(self.ssl_ca_location) if self.ssl_ca_location else None,
            "ssl.certificate.location": (
                str(self.ssl_certificate_location) if self.ssl_certificate_location else None
            ),
            "ssl.key.location": str(self.ssl_key_location) if self.ssl_key_location else None,
            "ssl.key.password": (
                self.ssl_key_password.get_secret_value() if self.ssl_key_password else None
            ),
        }
        conf.update({k: v for k, v in optional.items() if v is not None})
        return conf


class TopicSettings(_Section):
    """Topic names: upstream inputs and the topics this service owns."""

    returns: str = Field("returns", description="Input: return changes (Avro).")
    orders: str = Field("orders", description="Input: order and shipment changes (Avro).")
    storefront_events: str = Field(
        "storefront-events", description="Input: storefront actions (Avro)."
    )
    integrations: str = Field(
        "klaviyo-integrations", description="Compacted per-merchant settings."
    )
    integrations_audit: str = Field(
        "klaviyo-integrations-audit", description="Audit trail of integration changes."
    )
    outbox: str = Field(
        "klaviyo-outbox", description="Internal: Klaviyo operations keyed by merchant."
    )
    tracking_state: str = Field(
        "klaviyo-tracking-state", description="Internal: compacted shipment state changelog."
    )
    dead_letter: str = Field(
        "klaviyo-dead-letter", description="Records that cannot be processed, with the reason."
    )
    parked: str = Field(
        "klaviyo-parked", description="Operations for merchants that cannot be served now."
    )
    internal_partitions: int = Field(
        0, ge=0, description="Partitions for internal topics; 0 = same as the inputs."
    )
    replication_factor: int = Field(1, ge=1, description="Replication factor for internal topics.")


class SchemaRegistrySettings(_Section):
    """Confluent Schema Registry, used for Confluent-framed input (magic byte 0)."""

    url: str | None = Field(
        None, description="Registry base URL; unset = single-object encoding only."
    )
    basic_auth: SecretStr | None = Field(
        None, description="user:password for the registry (secret)."
    )
    timeout_seconds: float = Field(10.0, gt=0, description="Timeout of one registry request.")


class KlaviyoSettings(_Section):
    """The Klaviyo API."""

    base_url: str = Field(
        "https://a.klaviyo.com", description="Klaviyo API base URL (the sandbox locally)."
    )
    revision: str = Field(
        "2026-07-15",
        pattern=r"^\d{4}-\d{2}-\d{2}(\.\w+)?$",
        description="Pinned API revision header.",
    )
    request_timeout_seconds: float = Field(30.0, gt=0, description="Total timeout of one request.")
    max_connections: int = Field(64, ge=1, description="Connection pool size.")

    @field_validator("base_url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        return value.rstrip("/")


class DeriveSettings(_Section):
    """The derive stage (consume-transform-produce in Kafka transactions)."""

    checkpoint_interval_seconds: float = Field(
        1.0, gt=0, description="Commit a transaction at least this often."
    )
    checkpoint_max_records: int = Field(
        5_000, ge=1, description="Commit after this many input records."
    )
    stall_threshold_hours: float = Field(
        72.0,
        gt=0,
        description=(
            "No carrier scan for this long while in transit = stalled_in_transit"
            " (a merchant may override it)."
        ),
    )
    backfill_after_hours: float = Field(
        72.0,
        gt=0,
        description="Events that happened longer ago than this are sent with backfill=true.",
    )
    max_record_bytes: int = Field(
        1_000_000, ge=1, description="Larger input payloads are dead-lettered."
    )
    finished_order_retention_days: float = Field(
        30.0,
        gt=0,
        description=(
            "Tracking state of an order whose shipments all reached a terminal status (delivered,"
            " returned to sender, cancelled, failure), or that was cancelled, is removed this long"
            " after its last update."
        ),
    )
    idle_order_retention_days: float = Field(
        120.0, gt=0, description="Tracking state of any order is removed after this long idle."
    )
    retention_sweep_seconds: float = Field(
        3_600.0, gt=0, description="How often the tracking state is scanned for expired orders."
    )


class DeliverySettings(_Section):
    """The deliver stage (outbox → Klaviyo)."""

    batch_max_events: int = Field(1_000, ge=1, le=1_000, description="Events per bulk request.")
    batch_max_bytes: int = Field(
        4_500_000, ge=1_000, le=5_000_000, description="Bytes per request body."
    )
    linger_seconds: float = Field(0.5, ge=0, description="Wait this long for a batch to fill.")
    retry_budget_seconds: float = Field(
        300.0, gt=0, description="Retry a failing request this long, then park."
    )
    max_in_flight_per_partition: int = Field(
        10_000, ge=1, description="Pause a partition past this many unfinished operations."
    )
    events_burst_per_second: int = Field(
        10, ge=1, description="Bulk-events requests per second per merchant."
    )
    events_steady_per_minute: int = Field(
        150, ge=1, description="Bulk-events requests per minute per merchant."
    )
    subscriptions_burst_per_second: int = Field(
        75, ge=1, description="Subscription requests per second per merchant."
    )
    subscriptions_steady_per_minute: int = Field(
        750, ge=1, description="Subscription requests per minute per merchant."
    )


class IntegrationsSettings(_Section):
    """Merchant integrations and the key-encryption keys that protect their API keys."""

    key_encryption_keys: dict[str, SecretStr] = Field(
        default_factory=dict,
        description="Key id → base64 32-byte AES key. The primary key encrypts new writes.",
    )
    key_encryption_keys_dir: Path | None = Field(
        None, description="Directory of key files, one per key id (file name = key id)."
    )
    primary_key_id: str | None = Field(
        None, description="Key id for new writes; default = the greatest key id."
    )


class HttpSettings(_Section):
    """The health and metrics server."""

    host: str = Field("0.0.0.0", description="Bind address.")  # noqa: S104 -- pods are probed from outside
    port: int = Field(
        8080, ge=0, le=65535, description="Port of /metrics, /healthz, /readyz (0 = any free port)."
    )


class LoggingSettings(_Section):
    """Structured logs."""

    level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field("INFO", description="Log level.")
    format: Literal["json", "console"] = Field(
        "json", description="json for machines, console for people."
    )


class _EnvWithoutFileRefs(EnvSettingsSource):
    """Environment variables, less the ``*_FILE`` references that ``_SecretFilesSource`` reads."""

    def __init__(self, settings_cls: type[BaseSettings]) -> None:
        super().__init__(settings_cls)
        self.env_vars = {
            k: v for k, v in self.env_vars.items() if not k.endswith(FILE_SUFFIX.lower())
        }


class _SecretFilesSource(PydanticBaseSettingsSource):
    """Reads ``KLAVIYO_CONSUMER_<PATH>_FILE=/path`` as the value of setting ``<PATH>``."""

    def get_field_value(self, field: Any, field_name: str) -> tuple[Any, str, bool]:
        return None, field_name, False  # all work happens in __call__

    def __call__(self) -> dict[str, Any]:
        found: dict[str, Any] = {}
        for name, path in os.environ.items():
            if not (name.startswith(ENV_PREFIX) and name.endswith(FILE_SUFFIX)):
                continue
            if name == ENV_PREFIX + "SETTINGS_FILE":
                continue
            keys = name[len(ENV_PREFIX) : -len(FILE_SUFFIX)].lower().split(NESTED)
            try:
                value = Path(path).read_text(encoding="utf-8").strip()
            except OSError as exc:
                raise ConfigError(
                    f"{name}: cannot read secret file {path!r}: {exc.strerror}"
                ) from None
            node = found
            for key in keys[:-1]:
                node = node.setdefault(key, {})
            node[keys[-1]] = value
        return found


class Settings(BaseSettings):
    """The whole configuration of one klaviyo-consumer process."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_nested_delimiter=NESTED,
        extra="forbid",
        frozen=True,
    )

    kafka: KafkaSettings = Field(default_factory=KafkaSettings)
    topics: TopicSettings = Field(default_factory=TopicSettings)
    schema_registry: SchemaRegistrySettings = Field(default_factory=SchemaRegistrySettings)
    klaviyo: KlaviyoSettings = Field(default_factory=KlaviyoSettings)
    derive: DeriveSettings = Field(default_factory=DeriveSettings)
    delivery: DeliverySettings = Field(default_factory=DeliverySettings)
    integrations: IntegrationsSettings = Field(default_factory=IntegrationsSettings)
    http: HttpSettings = Field(default_factory=HttpSettings)
    logging: LoggingSettings = Field(default_factory=LoggingSettings)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources: list[PydanticBaseSettingsSource] = [
            init_settings,
            _EnvWithoutFileRefs(settings_cls),
            _SecretFilesSource(settings_cls),
        ]
        settings_file = os.environ.get(ENV_PREFIX + "SETTINGS_FILE")
        if settings_file:
            if not Path(settings_file).is_file():
                raise ConfigError(f"{ENV_PREFIX}SETTINGS_FILE: no such file {settings_file!r}")
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=settings_file))
        return tuple(sources)

    def redacted(self) -> dict[str, Any]:
        """The effective settings as plain data, every secret replaced by ``**********``."""
        return self.model_dump(mode="json")


def load_settings(**overrides: Any) -> Settings:
    """Build the settings; validation errors become one ``ConfigError`` naming each setting."""
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        problems = "; ".join(
            f"{ENV_PREFIX}{NESTED.join(str(p) for p in err['loc']).upper()}: {err['msg']}"
            for err in exc.errors(include_input=False)
        )
        raise ConfigError(f"invalid settings: {problems}") from None
