"""The pinned Prometheus (scripts/tools/prometheus.sh) as a test tool: fetch, run, query."""

from __future__ import annotations

import json
import socket
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import aiohttp

from consumer.devstack.process import spawn

__all__ = ["PrometheusServer", "prometheus_bin"]

ROOT = Path(__file__).resolve().parents[2]


def prometheus_bin() -> Path:
    """The directory holding ``prometheus`` and ``promtool``, fetched into .cache/ if needed."""
    script = ROOT / "scripts/tools/prometheus.sh"
    done = subprocess.run([str(script)], capture_output=True, text=True, check=False, timeout=300)
    assert done.returncode == 0, f"fetching Prometheus failed:\n{done.stderr}"
    return Path(done.stdout.strip().splitlines()[-1])


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


class PrometheusServer:
    """A Prometheus scraping ``target`` every second, with ``labels`` on every series."""

    def __init__(
        self,
        bin_dir: Path,
        workdir: Path,
        target: str,
        labels: Mapping[str, str],
        rule_files: Sequence[Path] = (),
    ) -> None:
        self._bin = bin_dir
        self._dir = workdir
        self.url = f"http://127.0.0.1:{_free_port()}"
        config = {
            "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
            "rule_files": [str(p) for p in rule_files],
            "scrape_configs": [
                {
                    "job_name": "klaviyo-consumer",
                    "static_configs": [{"targets": [target], "labels": dict(labels)}],
                }
            ],
        }
        self._config = workdir / "prometheus.yml"
        self._config.write_text(json.dumps(config))  # JSON is YAML
        self.log = workdir / "prometheus.log"
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def promtool(self) -> Path:
        """The promtool of the same release."""
        return self._bin / "promtool"

    def start(self) -> None:
        argv = [
            str(self._bin / "prometheus"),
            f"--config.file={self._config}",
            f"--storage.tsdb.path={self._dir / 'data'}",
            f"--web.listen-address={self.url.removeprefix('http://')}",
        ]
        with self.log.open("ab") as log:
            self._process = spawn(argv, output=log)

    def stop(self) -> None:
        if self._process is not None:
            self._process.terminate()
            self._process.wait(timeout=30)

    def alive(self) -> bool:
        return self._process is not None and self._process.poll() is None

    async def get(self, http: aiohttp.ClientSession, path: str, **params: str) -> Any:
        """The ``data`` of an HTTP API answer (asserts ``status: success``)."""
        async with http.get(f"{self.url}{path}", params=params) as response:
            body = await response.json()
        assert body["status"] == "success", f"{path} {params}: {body}"
        return body["data"]

    async def query(self, http: aiohttp.ClientSession, expr: str) -> list[dict[str, Any]]:
        """The instant vector ``expr`` evaluates to now."""
        data = await self.get(http, "/api/v1/query", query=expr)
        assert data["resultType"] == "vector", f"{expr}: {data['resultType']}"
        result: list[dict[str, Any]] = data["result"]
        return result
