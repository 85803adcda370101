"""One typed, frozen settings tree for the whole service.

Sources, highest priority first: constructor arguments, environment variables
(``KLAVIYO_CONSUMER_`` prefix, ``__`` between levels, e.g.
``KLAVIYO_CONSUMER_KAFKA__BOOTSTRAP_SERVERS``),
secret files (any setting ``X`` may instead be given as ``X_FILE=/path``, read and stripped),
an optional TOML file named by ``KLAVIYO_CONSUMER_SETTINGS_FILE``, then defaults.
Secrets are ``SecretStr`` and print as ``**********``.

Every mistake stops the start with one ``ConfigError`` line naming the setting: an unknown
``KLAVIYO_CONSUMER_*`` variable or TOML key (top-level or nested, with the closest valid name),
invalid TOML, or an invalid value. The few ``KLAVIYO_CONSUMER_*`` variables that are not
settings are listed in ``setting_sources.NON_SETTING_VARIABLES``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    FilePath,
    SecretStr,
    ValidationError,
    ValidationInfo,
    field_validator,
)
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from consumer.errors import ConfigError
from consumer.setting_sources import (
    ENV_PREFIX,
    NESTED,
    SETTINGS_FILE_VARIABLE,
    EnvWithoutFileRefs,
    SecretFilesSource,
    setting_name,
    settings_file_source,
)

__all__ = [
    "ENV_PREFIX",
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
    "setting_name",
]


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
        None,
        validate_default=True,
        description="SASL mechanism; required when security_protocol is SASL_*.",
    )
    sasl_username: str | None = Field(
        None, validate_default=True, description="SASL user name (required with a mechanism)."
    )
    sasl_password: SecretStr | None = Field(
        None,
        validate_default=True,
        description="SASL password (secret, required with a mechanism).",
    )
    ssl_ca_location: FilePath | None = Field(None, description="CA bundle to verify the brokers.")
    ssl_certificate_location: FilePath | None = Field(
        None, description="Client certificate (mTLS)."
    )
    ssl_key_location: FilePath | None = Field(None, description="Client private key (mTLS).")
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
    max_message_bytes: int = Field(
        1_048_576,
        ge=65_536,
        description=(
            "Largest record the service writes: the producers' message.max.bytes and the"
            " internal topics' max.message.bytes."
        ),
    )
    startup_timeout_seconds: float = Field(
        120.0,
        gt=0,
        description="At start, wait this long for a broker to answer, then exit (code 2).",
    )

    # librdkafka would otherwise fail when the first client is built (GSSAPI, no credentials).
    @field_validator("sasl_mechanism")
    @classmethod
    def _mechanism_with_sasl(cls, value: str | None, info: ValidationInfo) -> str | None:
        protocol = info.data.get("security_protocol", "")
        if value is None and protocol.startswith("SASL_"):
            raise ValueError(f"required when security_protocol is {protocol}")
        return value

    @field_validator("sasl_username", "sasl_password")
    @classmethod
    def _credentials_with_mechanism(cls, value: object, info: ValidationInfo) -> object:
        mechanism = info.data.get("sasl_mechanism")
        if value is None and mechanism is not None:
            raise ValueError(f"required when sasl_mechanism is {mechanism}")
        return value

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
    backfill_checkpoints: str = Field(
        "klaviyo-backfill-checkpoints",
        description="Internal: compacted progress and private state of backfill runs.",
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
    error_breaker_percent: float = Field(
        50.0,
        gt=0,
        le=100,
        description=(
            "Stop the stage when more than this share of a window's records fail with an"
            " unexpected error (100 = never)."
        ),
    )
    error_breaker_window: int = Field(200, ge=1, description="Records per error-breaker window.")
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
    local_state_dir: Path | None = Field(
        None,
        description=(
            "Directory for snapshots of the tracking state, written on a clean stop, so that the"
            " next start reads only the changelog's tail (unset: restore from the changelog)."
        ),
    )


class DeliverySettings(_Section):
    """The deliver stage (outbox → Klaviyo)."""

    batch_max_events: int = Field(1_000, ge=1, le=1_000, description="Events per bulk request.")
    batch_max_bytes: int = Field(
        4_500_000, ge=1_000, le=5_000_000, description="Bytes per request body."
    )
    linger_seconds: float = Field(
        0.5,
        ge=0,
        description=(
            "Wait for a batch to fill until its oldest operation was produced this long ago"
            " (20 x, from its queueing, under a backlog)."
        ),
    )
    retry_budget_seconds: float = Field(
        300.0, gt=0, description="Retry a failing request this long, then park."
    )
    max_in_flight_per_partition: int = Field(
        10_000,
        ge=1,
        description=(
            "Pause a partition past this many operations waiting (unfinished, not in a"
            " request); a request in flight per merchant lane comes on top."
        ),
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
    error_breaker_percent: float = Field(
        50.0,
        gt=0,
        le=100,
        description=(
            "Stop the stage when more than this share of a window's operations fail with an"
            " unexpected error (100 = never)."
        ),
    )
    error_breaker_window: int = Field(200, ge=1, description="Operations per error-breaker window.")


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
            EnvWithoutFileRefs(settings_cls),
            SecretFilesSource(settings_cls),
        ]
        settings_file = os.environ.get(SETTINGS_FILE_VARIABLE)
        if settings_file:
            sources.append(settings_file_source(settings_cls, settings_file))
        return tuple(sources)

    def redacted(self) -> dict[str, Any]:
        """The effective settings as plain data, every secret replaced by ``**********``."""
        return self.model_dump(mode="json")


def load_settings(**overrides: Any) -> Settings:
    """Build the settings; every mistake becomes one ``ConfigError`` naming each setting."""
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        problems = "; ".join(
            f"{setting_name(*(str(p) for p in err['loc']))}: {err['msg']}"
            for err in exc.errors(include_input=False)
        )
        raise ConfigError(f"invalid settings: {problems}") from None
