"""The broker's jars: fetched once from Maven Central with ``mvn``, then cached.

``fetch_broker_artifacts`` runs ``mvn dependency:copy-dependencies`` on the small pom that
ships next to this module (``kafka-pom.xml``: ``org.apache.kafka:kafka_2.13`` plus a log4j2
backend) into ``<cache>/kafka/<version>/libs``. A marker file, holding a fingerprint of the pom
and the version, makes later calls return at once; a file lock lets concurrent callers wait
for one download instead of racing.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import shutil
import subprocess
from pathlib import Path

from consumer.devstack.errors import BrokerFetchError
from consumer.paths import PACKAGE_DIR

__all__ = [
    "CACHE_DIR_ENV",
    "DEFAULT_KAFKA_VERSION",
    "POM_PATH",
    "broker_libs_dir",
    "cache_dir",
    "fetch_broker_artifacts",
    "java_executable",
]

DEFAULT_KAFKA_VERSION = "4.1.1"
CACHE_DIR_ENV = "KLAVIYO_CONSUMER_CACHE_DIR"
POM_PATH = Path(__file__).resolve().parent / "kafka-pom.xml"
_MARKER = ".complete"
_FETCH_TIMEOUT_SECONDS = 900.0


def cache_dir() -> Path:
    """Root of the download cache.

    ``$KLAVIYO_CONSUMER_CACHE_DIR`` if set; else ``.cache/`` of the source checkout this package
    runs from; else (an installed wheel) ``$XDG_CACHE_HOME/klaviyo-consumer``.
    """
    configured = os.environ.get(CACHE_DIR_ENV)
    if configured:
        return Path(configured).expanduser().resolve()
    repo = PACKAGE_DIR.parent
    if (repo / "pyproject.toml").is_file():
        return repo / ".cache"
    xdg = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(xdg) / "klaviyo-consumer"


def broker_libs_dir(version: str = DEFAULT_KAFKA_VERSION) -> Path:
    """Where the jars of Kafka ``version`` live once fetched (they may not be there yet)."""
    return cache_dir() / "kafka" / version / "libs"


def java_executable() -> str:
    """``$JAVA_HOME/bin/java`` if ``JAVA_HOME`` is set, else ``java`` from ``PATH``.

    Raises:
        BrokerFetchError: no Java runtime can be found (Kafka 4 needs Java 17 or later).
    """
    java_home = os.environ.get("JAVA_HOME")
    if java_home and (Path(java_home) / "bin" / "java").is_file():
        return str(Path(java_home) / "bin" / "java")
    found = shutil.which("java")
    if found is None:
        raise BrokerFetchError("no `java` on PATH: Kafka 4 needs a Java 17+ runtime")
    return found


def _fingerprint(version: str) -> str:
    digest = hashlib.sha256(POM_PATH.read_bytes())
    digest.update(version.encode())
    return digest.hexdigest()


def _is_complete(libs: Path, fingerprint: str) -> bool:
    marker = libs.parent / _MARKER
    try:
        return marker.read_text(encoding="utf-8").strip() == fingerprint and libs.is_dir()
    except FileNotFoundError:
        return False


def fetch_broker_artifacts(version: str = DEFAULT_KAFKA_VERSION) -> Path:
    """Make sure the jars of Kafka ``version`` are cached; return their directory.

    Idempotent: returns at once when the cache is complete for this pom and version.

    Raises:
        BrokerFetchError: ``mvn`` is missing or failed (its output tail is in the message).
    """
    libs = broker_libs_dir(version)
    fingerprint = _fingerprint(version)
    if _is_complete(libs, fingerprint):
        return libs
    libs.parent.mkdir(parents=True, exist_ok=True)
    with (libs.parent / ".lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not _is_complete(libs, fingerprint):  # another process may have just finished
            _download(version, libs, fingerprint)
    return libs


def _download(version: str, libs: Path, fingerprint: str) -> None:
    mvn = shutil.which("mvn")
    if mvn is None:
        raise BrokerFetchError("no `mvn` on PATH: Maven fetches the Kafka broker jars")
    staging = libs.parent / "libs.partial"
    shutil.rmtree(staging, ignore_errors=True)
    argv = [
        mvn,
        "-q",
        "-B",
        "-f",
        str(POM_PATH),
        f"-Dkafka.version={version}",
        "dependency:copy-dependencies",
        "-DincludeScope=runtime",
        f"-DoutputDirectory={staging}",
    ]
    try:
        result = subprocess.run(
            argv,
            capture_output=True,
            text=True,
            timeout=_FETCH_TIMEOUT_SECONDS,
            check=False,
        )
    except subprocess.TimeoutExpired:
        raise BrokerFetchError(
            f"mvn did not fetch Kafka {version} within {_FETCH_TIMEOUT_SECONDS:.0f} s"
        ) from None
    jars = sorted(staging.glob("*.jar")) if staging.is_dir() else []
    if result.returncode != 0 or not any(j.name.startswith("kafka_2.13-") for j in jars):
        tail = "\n".join((result.stdout + result.stderr).strip().splitlines()[-20:])
        raise BrokerFetchError(
            f"mvn could not fetch Kafka {version} (exit {result.returncode}):\n{tail}"
        )
    shutil.rmtree(libs, ignore_errors=True)
    staging.rename(libs)
    (libs.parent / _MARKER).write_text(fingerprint + "\n", encoding="utf-8")
