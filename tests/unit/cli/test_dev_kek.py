"""``dev kek new``: a fresh key the service accepts, printed or written to a private file."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from consumer.cli.main import main
from consumer.integrations import Keyring
from consumer.settings import IntegrationsSettings


def test_kek_new_prints_a_key_the_keyring_accepts(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["dev", "kek", "new"]) == 0
    first = capsys.readouterr()
    assert main(["dev", "kek", "new"]) == 0
    second = capsys.readouterr().out.strip()
    key = first.out.strip()
    assert key != second
    keyring = Keyring.from_settings(IntegrationsSettings(key_encryption_keys={"k1": key}))
    assert keyring.primary_key_id == "k1"
    assert "KEY_ENCRYPTION_KEYS" in first.err


def test_kek_new_writes_a_private_file_and_never_overwrites(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    directory = tmp_path / "keks"
    assert main(["dev", "kek", "new", "--id", "k2", "--dir", str(directory)]) == 0
    path = directory / "k2"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    written = path.read_text()
    assert written.strip() not in capsys.readouterr().out  # only the path is shown
    keyring = Keyring.from_settings(IntegrationsSettings(key_encryption_keys_dir=directory))
    assert keyring.primary_key_id == "k2"
    assert main(["dev", "kek", "new", "--id", "k2", "--dir", str(directory)]) == 1
    assert path.read_text() == written


def test_kek_new_refuses_an_id_the_service_would_refuse() -> None:
    assert main(["dev", "kek", "new", "--id", "no spaces"]) == 2
