"""Settings fail fast: every unknown name is refused with the closest valid one."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from consumer.errors import ConfigError
from consumer.settings import load_settings


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Only the variables a test sets (a developer's shell may export some)."""
    for name in list(os.environ):
        if name.upper().startswith("KLAVIYO_CONSUMER_"):
            monkeypatch.delenv(name)


@pytest.mark.parametrize(
    ("variable", "suggestion"),
    [
        ("KLAVIYO_CONSUMER_KAFKA_BOOTSTRAP_SERVERS", "KLAVIYO_CONSUMER_KAFKA__BOOTSTRAP_SERVERS"),
        ("KLAVIYO_CONSUMER_KAFKA__BOOTSTRAP_SERVER", "KLAVIYO_CONSUMER_KAFKA__BOOTSTRAP_SERVERS"),
        ("KLAVIYO_CONSUMER_HTTP_PORT", "KLAVIYO_CONSUMER_HTTP__PORT"),
        ("KLAVIYO_CONSUMER_KAFKA__SASL_PASWORD_FILE", "KLAVIYO_CONSUMER_KAFKA__SASL_PASSWORD_FILE"),
        ("klaviyo_consumer_topic__orders", "KLAVIYO_CONSUMER_TOPICS__ORDERS"),
    ],
    ids=["one-underscore", "nested-typo", "top-level", "secret-file", "lower-case"],
)
def test_settings_unknown_variable_names_it_and_the_closest(
    monkeypatch: pytest.MonkeyPatch, variable: str, suggestion: str
) -> None:
    monkeypatch.setenv(variable, "value")
    with pytest.raises(ConfigError) as caught:
        load_settings()
    assert str(caught.value) == f"{variable}: unknown setting; did you mean {suggestion}?"


def test_settings_unknown_variable_far_from_any_has_no_suggestion(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("KLAVIYO_CONSUMER_WHATEVER", "1")
    with pytest.raises(ConfigError, match=r"^KLAVIYO_CONSUMER_WHATEVER: unknown setting$"):
        load_settings()


def test_settings_known_variables_and_non_settings_are_accepted(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    secret = tmp_path / "password"
    secret.write_text("s3cret\n")
    monkeypatch.setenv("KLAVIYO_CONSUMER_KAFKA__BOOTSTRAP_SERVERS", "broker:9093")
    monkeypatch.setenv("KLAVIYO_CONSUMER_KAFKA__SASL_PASSWORD_FILE", str(secret))
    monkeypatch.setenv("KLAVIYO_CONSUMER_INTEGRATIONS__KEY_ENCRYPTION_KEYS__K1", "a2V5")
    monkeypatch.setenv("KLAVIYO_CONSUMER_TEST_BOOTSTRAP_SERVERS", "127.0.0.1:1")
    monkeypatch.setenv("KLAVIYO_CONSUMER_CACHE_DIR", str(tmp_path))
    settings = load_settings()
    assert settings.kafka.bootstrap_servers == "broker:9093"
    assert settings.kafka.sasl_password is not None
    assert settings.kafka.sasl_password.get_secret_value() == "s3cret"
    assert settings.integrations.key_encryption_keys["k1"].get_secret_value() == "a2V5"


def test_settings_file_unknown_keys_top_level_and_nested(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    toml = tmp_path / "settings.toml"
    toml.write_text('[kafka]\nbootstrap_server = "x"\n\n[topicz]\norders = "o"\n')
    monkeypatch.setenv("KLAVIYO_CONSUMER_SETTINGS_FILE", str(toml))
    with pytest.raises(ConfigError) as caught:
        load_settings()
    message = str(caught.value)
    assert "kafka.bootstrap_server: unknown setting" in message
    assert "did you mean kafka.bootstrap_servers?" in message
    assert "topicz: unknown setting" in message
    assert "did you mean topics?" in message


def test_settings_file_values_apply_below_the_environment(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    toml = tmp_path / "settings.toml"
    toml.write_text('[kafka]\nbootstrap_servers = "file:1"\nclient_id = "from-file"\n')
    monkeypatch.setenv("KLAVIYO_CONSUMER_SETTINGS_FILE", str(toml))
    monkeypatch.setenv("KLAVIYO_CONSUMER_KAFKA__BOOTSTRAP_SERVERS", "env:2")
    settings = load_settings()
    assert settings.kafka.bootstrap_servers == "env:2"
    assert settings.kafka.client_id == "from-file"


def test_settings_file_invalid_toml_names_the_file_variable(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    toml = tmp_path / "settings.toml"
    toml.write_text("[kafka\nbootstrap_servers = 1\n")
    monkeypatch.setenv("KLAVIYO_CONSUMER_SETTINGS_FILE", str(toml))
    with pytest.raises(ConfigError, match=r"^KLAVIYO_CONSUMER_SETTINGS_FILE: .* is not valid TOML"):
        load_settings()


@pytest.mark.parametrize(
    ("overrides", "setting"),
    [
        ({"security_protocol": "SASL_SSL"}, "kafka.sasl_mechanism"),
        ({"security_protocol": "SASL_PLAINTEXT", "sasl_mechanism": "PLAIN"}, "kafka.sasl_username"),
        (
            {"security_protocol": "SASL_SSL", "sasl_mechanism": "PLAIN", "sasl_username": "u"},
            "kafka.sasl_password",
        ),
        ({"ssl_ca_location": "/nonexistent/ca.pem"}, "kafka.ssl_ca_location"),
        ({"startup_timeout_seconds": 0}, "kafka.startup_timeout_seconds"),
    ],
    ids=["sasl-without-mechanism", "mechanism-without-user", "no-password", "no-ca", "timeout"],
)
def test_settings_kafka_mistakes_name_the_setting(overrides: dict[str, str], setting: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings(kafka=overrides)
    variable = "KLAVIYO_CONSUMER_" + setting.replace(".", "__").upper()
    assert f"{setting} ({variable}):" in str(caught.value)


def test_settings_sasl_complete_is_accepted() -> None:
    settings = load_settings(
        kafka={
            "security_protocol": "SASL_SSL",
            "sasl_mechanism": "SCRAM-SHA-512",
            "sasl_username": "svc",
            "sasl_password": "pw",
        }
    )
    conf = settings.kafka.to_librdkafka()
    assert conf["sasl.mechanism"] == "SCRAM-SHA-512"
    assert "pw" not in repr(settings)
