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


class HistochainProcess(ManagedProcess):
    """A `histochain` verb run by this interpreter, with `env` layered over the parent's environment;
    it listens where HISTOCHAIN_<listens>_HOST/_PORT say and is ready when /health answers."""

    verb: tuple[str, ...] = ()
    listens = ""

    def __init__(self, host: str, port: int, log_file: Path, env: Mapping[str, str] | None = None) -> None:
        super().__init__(host, port, log_file)
        self.env = dict(env or {})

    def command(self) -> Sequence[str]:
        return [sys.executable, "-m", "oracle", *self.verb]

    def environment(self) -> dict[str, str]:
        return {
            **os.environ,
            "PYTHONUNBUFFERED": "1",
            **self.env,
            f"HISTOCHAIN_{self.listens}_HOST": self.host,
            f"HISTOCHAIN_{self.listens}_PORT": str(self.port),
        }

    def probe(self) -> bool:
        with urllib.request.urlopen(f"{self.url}/health", timeout=2) as response:  # noqa: S310 - loopback
            return bool(response.status == 200)


class OracleProcess(HistochainProcess):
    """`histochain oracle run --role <role>`; its /health is on the metrics port."""

    listens = "METRICS"

    def __init__(
        self, host: str, port: int, log_file: Path, env: Mapping[str, str] | None = None, role: str = "all"
    ) -> None:
        super().__init__(host, port, log_file, env)
        self.name = "oracle" if role == "all" else log_file.stem
        self.verb = ("oracle", "run", "--role", role)


class ApiProcess(HistochainProcess):
    """`histochain api`."""

    name = "api"
    verb = ("api",)
    listens = "API"


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
