"""Where settings come from (environment, secret files, TOML), each name checked first.

pydantic-settings only reads the environment variables that match a field, so a misspelt one
(``KLAVIYO_CONSUMER_KAFKA_BOOTSTRAP_SERVERS``, one underscore) would be ignored without a word,
and an unknown TOML key is only "extra input" to pydantic. The sources here walk the model
classes instead, so every unknown name is refused with the closest valid one (``difflib``).
"""

from __future__ import annotations

import difflib
import os
import tomllib
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any, Final, get_origin

from pydantic import BaseModel
from pydantic_settings import (
    BaseSettings,
    EnvSettingsSource,
    InitSettingsSource,
    PydanticBaseSettingsSource,
)

from consumer.errors import ConfigError

__all__ = [
    "ENV_PREFIX",
    "FILE_SUFFIX",
    "NESTED",
    "NON_SETTING_VARIABLES",
    "SETTINGS_FILE_VARIABLE",
    "EnvWithoutFileRefs",
    "SecretFilesSource",
    "setting_name",
    "settings_file_source",
]

ENV_PREFIX = "KLAVIYO_CONSUMER_"
NESTED = "__"
FILE_SUFFIX = "_FILE"
SETTINGS_FILE_VARIABLE = ENV_PREFIX + "SETTINGS_FILE"
NON_SETTING_VARIABLES: Final = frozenset(
    {
        SETTINGS_FILE_VARIABLE,
        ENV_PREFIX + "CACHE_DIR",  # devstack's download cache (consumer/devstack/artifacts.py)
        ENV_PREFIX + "TEST_BOOTSTRAP_SERVERS",  # the test suite's external broker
    }
)
"""``KLAVIYO_CONSUMER_*`` variables that are not settings; any other unknown one is refused."""


def setting_name(*path: str) -> str:
    """``kafka.bootstrap_servers (KLAVIYO_CONSUMER_KAFKA__BOOTSTRAP_SERVERS)``: both spellings."""
    return f"{'.'.join(path)} ({ENV_PREFIX}{NESTED.join(path).upper()})"


SettingPath = tuple[str, ...]
"""Field names from the root, e.g. ``("kafka", "bootstrap_servers")``."""


def known_paths(model: type[BaseModel], prefix: SettingPath = ()) -> dict[SettingPath, bool]:
    """Every setting of ``model`` → whether it is a mapping (which takes keys of its own)."""
    paths: dict[SettingPath, bool] = {}
    for name, field in model.model_fields.items():
        path = (*prefix, name)
        annotation = field.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            paths[path] = False
            paths.update(known_paths(annotation, path))
        else:
            paths[path] = get_origin(annotation) is dict
    return paths


def unknown_path(paths: Mapping[SettingPath, bool], path: SettingPath) -> bool:
    """Whether ``path`` names no setting (keys inside a mapping setting are all allowed)."""
    for depth in range(len(path), 0, -1):
        head = path[:depth]
        if head in paths:
            return depth < len(path) and not paths[head]
    return True


def unknown_keys(
    paths: Mapping[SettingPath, bool], data: Mapping[str, Any], prefix: SettingPath = ()
) -> Iterator[SettingPath]:
    """The paths of nested ``data`` (e.g. a parsed TOML file) that name no setting."""
    for key, value in data.items():
        path = (*prefix, key)
        if unknown_path(paths, path):
            yield path
        elif isinstance(value, Mapping) and not paths.get(path, True):
            yield from unknown_keys(paths, value, path)


def closest(name: str, candidates: Iterable[str]) -> str | None:
    """The candidate most like ``name``, if any is reasonably close."""
    matches = difflib.get_close_matches(name, list(candidates), n=1, cutoff=0.6)
    return matches[0] if matches else None


class EnvWithoutFileRefs(EnvSettingsSource):
    """Environment variables, less the ``*_FILE`` references that ``SecretFilesSource`` reads.

    Raises:
        ConfigError: a ``KLAVIYO_CONSUMER_*`` variable names no setting.
    """

    def __init__(self, settings_cls: type[BaseSettings]) -> None:
        super().__init__(settings_cls)
        _check_variables(settings_cls, os.environ)
        self.env_vars = {
            k: v for k, v in self.env_vars.items() if not k.endswith(FILE_SUFFIX.lower())
        }


def _check_variables(settings_cls: type[BaseSettings], environ: Mapping[str, str]) -> None:
    paths = known_paths(settings_cls)
    valid = [NESTED.join(path).upper() for path in paths]
    problems = []
    for name in sorted(environ):
        upper = name.upper()  # pydantic-settings reads names case-insensitively
        if not upper.startswith(ENV_PREFIX) or upper in NON_SETTING_VARIABLES:
            continue
        base = upper.removesuffix(FILE_SUFFIX)[len(ENV_PREFIX) :]
        if not unknown_path(paths, tuple(base.lower().split(NESTED))):
            continue
        suggestion = closest(base, valid)
        suffix = upper[len(ENV_PREFIX) + len(base) :]
        hint = f"; did you mean {ENV_PREFIX}{suggestion}{suffix}?" if suggestion else ""
        problems.append(f"{name}: unknown setting{hint}")
    if problems:
        raise ConfigError("; ".join(problems))


class SecretFilesSource(PydanticBaseSettingsSource):
    """Reads ``KLAVIYO_CONSUMER_<PATH>_FILE=/path`` as the value of setting ``<PATH>``."""

    def get_field_value(self, field: Any, field_name: str) -> tuple[Any, str, bool]:
        return None, field_name, False  # all work happens in __call__

    def __call__(self) -> dict[str, Any]:
        found: dict[str, Any] = {}
        for name, path in os.environ.items():
            if not (name.startswith(ENV_PREFIX) and name.endswith(FILE_SUFFIX)):
                continue
            if name in NON_SETTING_VARIABLES:
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


def settings_file_source(settings_cls: type[BaseSettings], file: str) -> InitSettingsSource:
    """The TOML file as a source, after checking that it parses and names only settings."""
    try:
        data = tomllib.loads(Path(file).read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(
            f"{SETTINGS_FILE_VARIABLE}: cannot read {file!r}: {exc.strerror}"
        ) from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{SETTINGS_FILE_VARIABLE}: {file!r} is not valid TOML: {exc}") from None
    paths = known_paths(settings_cls)
    valid = [".".join(path) for path in paths]
    problems = []
    for path in unknown_keys(paths, data):
        name = ".".join(path)
        suggestion = closest(name, valid)
        hint = f"; did you mean {suggestion}?" if suggestion else ""
        problems.append(f"{name}: unknown setting in {file!r}{hint}")
    if problems:
        raise ConfigError("; ".join(problems))
    return InitSettingsSource(settings_cls, init_kwargs=data)
