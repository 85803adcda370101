"""The container image's recipe, exercised without a Docker engine.

``docker/install.sh`` is what the Dockerfile's build stage runs. Here it installs into a fresh
directory, which is then made read-only; the service starts from there as the image's user
(uid 10001) with a read-only working directory and ``HOME``, only a scratch ``TMPDIR`` writable
(the pod's ``/tmp`` emptyDir), and must pass ``/readyz`` and the image's ``HEALTHCHECK``.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import stat
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path
from urllib.error import URLError
from urllib.request import urlopen

import pytest
from dockerfile_parse import DockerfileParser

from consumer.devstack import free_port
from consumer.devstack.process import spawn
from tests.helpers.waiting import wait_until
from tests.integration.runtime.conftest import Stack

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[3]
IMAGE_UID = 10001


def _uv() -> str:
    found = os.environ.get("UV") or shutil.which("uv") or str(Path.home() / ".local/bin/uv")
    assert Path(found).exists(), "uv not found: run `make install` first"
    return found


def _read_only(path: Path) -> None:
    for entry in [path, *path.rglob("*")]:
        if not entry.is_symlink():
            mode = entry.stat().st_mode
            entry.chmod(mode & ~(stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH))


@pytest.fixture(scope="module")
def image_root() -> Iterator[Path]:
    """A fresh, read-only install made by the image's own install script."""
    root = Path(tempfile.mkdtemp(prefix="klaviyo-consumer-image-"))
    root.chmod(0o755)  # the image's user must reach it
    prefix = root / "opt"
    subprocess.run(
        [str(ROOT / "docker/install.sh"), str(prefix)],
        cwd=ROOT,
        env={**os.environ, "UV": _uv()},
        check=True,
        timeout=600,
    )
    _read_only(prefix)
    try:
        yield prefix
    finally:
        for entry in [prefix, *prefix.rglob("*")]:
            if not entry.is_symlink():
                entry.chmod(entry.stat().st_mode | stat.S_IWUSR)
        shutil.rmtree(root)


def _as_image_user(argv: list[str]) -> list[str]:
    """Run as the image's uid when we are root (chmod alone does not stop root writing)."""
    if os.geteuid() != 0:
        return argv
    ids = [f"--reuid={IMAGE_UID}", f"--regid={IMAGE_UID}", "--clear-groups"]
    return ["setpriv", *ids, *argv]


def _status(url: str) -> int | None:
    try:
        with urlopen(url, timeout=2) as response:  # noqa: S310 -- a loopback http URL we built
            return int(response.status)
    except URLError:
        return None


def _healthcheck(dockerfile: Path) -> list[str]:
    """The ``HEALTHCHECK ... CMD [...]`` of the image, as an argv."""
    parser = DockerfileParser(str(dockerfile))
    (line,) = [i["value"] for i in parser.structure if i["instruction"] == "HEALTHCHECK"]
    return list(json.loads(line[line.index("CMD") + 3 :]))


async def test_installed_image_runs_read_only_as_its_user_and_becomes_ready(
    stack: Stack, image_root: Path
) -> None:
    await asyncio.to_thread(_run_image, image_root, stack.env(), stack.log_dir / "image.log")


def _run_image(image_root: Path, stack_env: dict[str, str], log_file: Path) -> None:
    scratch = Path(tempfile.mkdtemp(prefix="klaviyo-consumer-tmp-"))
    scratch.chmod(0o1777)
    home = Path(tempfile.mkdtemp(prefix="klaviyo-consumer-home-"))
    home.chmod(0o555)
    port = free_port()
    env = {
        **stack_env,
        "PATH": f"{image_root / 'bin'}:/usr/bin:/bin",
        "HOME": str(home),
        "TMPDIR": str(scratch),
        "PYTHONDONTWRITEBYTECODE": "1",
        "KLAVIYO_CONSUMER_HTTP__PORT": str(port),
    }
    argv = _as_image_user([str(image_root / "bin/klaviyo-consumer"), "run"])
    with log_file.open("ab") as log:
        process = spawn(argv, env=env, output=log, cwd=home)
    try:
        ready = f"http://127.0.0.1:{port}/readyz"
        wait_until(
            lambda: _status(ready) == 200 or process.poll() is not None,
            timeout=90,
            what="/readyz of the installed image",
        )
        assert process.poll() is None, log_file.read_text()
        health = _healthcheck(ROOT / "Dockerfile")
        assert health[0] == "python"
        probe = [str(image_root / "bin/python"), *health[1:]]
        probe = [arg.replace("127.0.0.1:8080", f"127.0.0.1:{port}") for arg in probe]
        subprocess.run(_as_image_user(probe), env=env, check=True, timeout=10)
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=60) == 0, log_file.read_text()
        assert list(home.iterdir()) == [], "nothing may be written outside TMPDIR"
    finally:
        if process.poll() is None:
            process.kill()
        shutil.rmtree(scratch, ignore_errors=True)
        home.chmod(0o755)
        shutil.rmtree(home, ignore_errors=True)
