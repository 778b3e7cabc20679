"""The local IPFS node (tools/ipfs-node.mjs) as a dev-stack process."""

import json
import os
import shutil
import urllib.request
from collections.abc import Sequence
from pathlib import Path

from oracle import REPO_ROOT
from oracle.dev.process import ManagedProcess
from oracle.errors import ToolchainError

NODE_SCRIPT = REPO_ROOT / "tools" / "ipfs-node.mjs"


class IpfsNode(ManagedProcess):
    """Pinata-compatible uploads with `token`, a trustless gateway, content kept in `data_dir`."""

    name = "ipfs node"

    def __init__(
        self,
        host: str,
        port: int,
        data_dir: Path,
        token: str,
        log_file: Path,
        max_upload_bytes: int = 32 << 20,
        max_in_flight_bytes: int | None = None,
    ) -> None:
        """`max_in_flight_bytes`: what all unfinished uploads may hold together (default 4 uploads)."""
        super().__init__(host, port, log_file)
        self.data_dir, self.token, self.max_upload_bytes = data_dir, token, max_upload_bytes
        self.max_in_flight_bytes = max_in_flight_bytes or 4 * max_upload_bytes

    def command(self) -> Sequence[str]:
        node = shutil.which("node")
        if node is None:
            raise ToolchainError("node (Node.js >= 20) is not on PATH")
        self.data_dir.mkdir(parents=True, exist_ok=True)
        return [
            node, str(NODE_SCRIPT),
            "--host", self.host,
            "--port", str(self.port),
            "--data", str(self.data_dir),
            "--max-upload-bytes", str(self.max_upload_bytes),
            "--max-in-flight-bytes", str(self.max_in_flight_bytes),
        ]  # fmt: skip

    def environment(self) -> dict[str, str]:
        return {**os.environ, "HISTOCHAIN_IPFS_TOKEN": self.token}

    def probe(self) -> bool:
        with urllib.request.urlopen(f"{self.url}/health", timeout=2) as response:  # noqa: S310 - our own loopback URL
            return bool(json.load(response).get("status") == "ok")
