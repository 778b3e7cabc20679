"""The Python services of the dev stack as child processes: the oracle daemon, the query API and
the page's static server. Each child reads the same settings (HISTOCHAIN_* and the config file),
plus the overrides given here."""

import json
import os
import sys
import urllib.request
from collections.abc import Mapping, Sequence
from pathlib import Path

from oracle.dev.process import ManagedProcess


def _answers(url: str) -> bool:
    with urllib.request.urlopen(url, timeout=2) as response:  # noqa: S310 - our own loopback URL
        return bool(response.status == 200)


class HistochainProcess(ManagedProcess):
    """A `histochain` verb run by this interpreter, with `env` layered over the parent's environment."""

    verb: tuple[str, ...] = ()

    def __init__(self, host: str, port: int, log_file: Path, env: Mapping[str, str] | None = None) -> None:
        super().__init__(host, port, log_file)
        self.env = dict(env or {})

    def command(self) -> Sequence[str]:
        return [sys.executable, "-m", "oracle", *self.verb]

    def environment(self) -> dict[str, str]:
        return {**os.environ, "PYTHONUNBUFFERED": "1", **self.env}


class OracleProcess(HistochainProcess):
    """`histochain oracle run`; ready when its /health (on the metrics port) answers."""

    name = "oracle"
    verb = ("oracle", "run")

    def environment(self) -> dict[str, str]:
        return super().environment() | {
            "HISTOCHAIN_METRICS_HOST": self.host,
            "HISTOCHAIN_METRICS_PORT": str(self.port),
        }

    def probe(self) -> bool:
        return _answers(f"{self.url}/health")


class ApiProcess(HistochainProcess):
    """`histochain api`; ready when /health answers."""

    name = "api"
    verb = ("api",)

    def environment(self) -> dict[str, str]:
        return super().environment() | {
            "HISTOCHAIN_API_HOST": self.host,
            "HISTOCHAIN_API_PORT": str(self.port),
        }

    def probe(self) -> bool:
        return _answers(f"{self.url}/health")


class PageServer(ManagedProcess):
    """Python's plain static file server over the assembled page: nothing the page needs is dynamic."""

    name = "page"

    def __init__(self, host: str, port: int, site: Path, log_file: Path) -> None:
        super().__init__(host, port, log_file)
        self.site = site

    def command(self) -> Sequence[str]:
        return [
            sys.executable, "-m", "http.server",
            "--bind", self.host,
            "--directory", str(self.site),
            str(self.port),
        ]  # fmt: skip

    def probe(self) -> bool:
        with urllib.request.urlopen(f"{self.url}/config.json", timeout=2) as response:  # noqa: S310 - loopback
            return "registry" in json.load(response)
