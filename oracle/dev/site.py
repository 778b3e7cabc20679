"""The page as a folder any static server can serve: frontend/'s files, the bundle built at setup,
and a config.json naming the chain, the registry, the IPFS node and the API.

The config is public by construction: the local node's upload token goes in only when it is the
published dev default; any other token, and every Pinata JWT, is typed by the user into the page."""

import json
import shutil
from pathlib import Path
from typing import Any

from oracle import REPO_ROOT
from oracle.chain.deployment import Deployment
from oracle.errors import HistochainError
from oracle.settings import DEV_IPFS_TOKEN, Settings

FRONTEND = REPO_ROOT / "frontend"
FILES = ("index.html", "style.css", "favicon.svg", "dist/app.js", "dist/app.js.map")


class SiteError(HistochainError):
    """The page cannot be assembled (the bundle is missing)."""


def page_config(settings: Settings, deployment: Deployment) -> dict[str, Any]:
    return {
        "chain": {
            "id": deployment.chain_id,
            "name": settings.page_chain_name,
            "rpcUrl": settings.rpc_url,
            "explorer": settings.page_explorer,
        },
        "registry": {"address": deployment.address, "block": deployment.block, "abi": deployment.abi},
        "models": [{"name": m.name, "modelId": m.model_id} for m in deployment.models],
        "ipfs": {
            "provider": "pinata" if settings.pinata_jwt else "local",
            "apiUrl": settings.pinata_api_url if settings.pinata_jwt else settings.ipfs_url,
            "gatewayUrl": settings.gateways[0],
            "devToken": DEV_IPFS_TOKEN if settings.ipfs_token == DEV_IPFS_TOKEN else None,
        },
        "api": {"url": f"http://{settings.api_host}:{settings.api_port}"},
        "maxUploadBytes": min(settings.ipfs_max_upload_bytes, settings.max_image_bytes),
    }


def build_site(out: Path, settings: Settings, deployment: Deployment) -> Path:
    """Writes the page into `out` (replacing what was there) and returns `out`."""
    missing = [name for name in FILES if not (FRONTEND / name).is_file()]
    if missing:
        raise SiteError(f"the page bundle is missing ({', '.join(missing)}); run scripts/setup")
    if out.exists():
        shutil.rmtree(out)
    for name in FILES:
        (out / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(FRONTEND / name, out / name)
    (out / "config.json").write_text(json.dumps(page_config(settings, deployment), indent=2) + "\n")
    return out
