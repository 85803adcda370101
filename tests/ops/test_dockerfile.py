"""The Dockerfile's promises, read with a Dockerfile parser (the image test runs its recipe)."""

from __future__ import annotations

import json
from pathlib import Path

from dockerfile_parse import DockerfileParser

ROOT = Path(__file__).resolve().parents[2]


def _instructions() -> list[tuple[str, str]]:
    parser = DockerfileParser(str(ROOT / "Dockerfile"))
    return [(i["instruction"], i["value"]) for i in parser.structure]


def _final_stage() -> list[tuple[str, str]]:
    steps = _instructions()
    last_from = max(i for i, (op, _) in enumerate(steps) if op == "FROM")
    return steps[last_from:]


def test_multi_stage_build_installs_from_the_lock_with_the_tested_script() -> None:
    steps = _instructions()
    assert sum(op == "FROM" for op, _ in steps) >= 2
    copies = " ".join(value for op, value in steps if op == "COPY")
    assert "uv.lock" in copies
    runs = [value for op, value in steps if op == "RUN"]
    assert any("--frozen" in run for run in runs), "dependencies must come from uv.lock"
    assert any("docker/install.sh" in run for run in runs)


def test_final_stage_is_slim_non_root_and_read_only_friendly() -> None:
    final = _final_stage()
    assert "slim" in DockerfileParser(str(ROOT / "Dockerfile")).baseimage
    (user,) = [value for op, value in final if op == "USER"]
    uid = user.split(":")[0]
    assert uid.isdigit() and int(uid) >= 10000, "a fixed numeric non-root uid"
    env = " ".join(value for op, value in final if op == "ENV")
    assert "PYTHONDONTWRITEBYTECODE=1" in env and "HOME=/tmp" in env
    assert ("WORKDIR", "/tmp") in final  # noqa: S108 -- the image's only writable path
    # Nothing of the build toolchain reaches the runtime stage.
    assert not any("uv" in value.split() for op, value in final if op in {"COPY", "RUN"})


def test_entrypoint_and_healthcheck() -> None:
    final = dict(_final_stage())
    assert json.loads(final["ENTRYPOINT"]) == ["klaviyo-consumer"]
    assert json.loads(final["CMD"]) == ["run"]
    assert "/healthz" in final["HEALTHCHECK"]


def test_dockerignore_admits_only_what_the_build_copies() -> None:
    lines = [
        line.strip()
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert lines[0] == "*", "deny by default: .venv, .cache and tests stay out of the context"
    admitted = {line[1:].rstrip("/") for line in lines if line.startswith("!")}
    copied = set()
    for op, value in _instructions():
        if op == "COPY" and "--from" not in value:
            copied.update(Path(p).as_posix().rstrip("/") for p in value.split()[:-1])
    assert copied <= admitted, f"COPY of paths the context excludes: {copied - admitted}"
