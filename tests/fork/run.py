"""Driver of the fork suite: upstream devnet anvil -> scripts/deploy.py -> ape test on devnet-fork.

    .venv/bin/python -m tests.fork.run [pytest args]

Exits with ape test's code; the upstream anvil is stopped whatever happens. The devnet's port is
fixed by ape-config.yaml, so two checkouts' suites on one machine take turns (a lock file per port).
"""

import fcntl
import hashlib
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import yaml

from oracle.dev.anvil import Anvil
from oracle.ml.card import ModelCard, Preprocessing

ROOT = Path(__file__).resolve().parents[2]


def devnet_endpoint() -> tuple[str, int, int]:
    """Host, port and chain id of `devnet` as ape-config.yaml declares them."""
    config = yaml.safe_load((ROOT / "ape-config.yaml").read_text())
    (network,) = [n for n in config["networks"]["custom"] if n["name"] == "devnet"]
    host, port = config["node"]["ethereum"]["devnet"]["uri"].removeprefix("http://").split(":")
    return host, int(port), int(network["chain_id"])


def main() -> int:
    host, port, chain_id = devnet_endpoint()
    ape = str(Path(sys.executable).with_name("ape"))
    lock = Path(tempfile.gettempdir()) / f"histochain-devnet-{port}.lock"
    with lock.open("w") as held, tempfile.TemporaryDirectory(prefix="histochain-fork-") as tmp:
        fcntl.flock(held, fcntl.LOCK_EX)  # released when the file closes, whatever happens
        work = Path(tmp)
        card = ModelCard(
            name="fork-suite-model",
            architecture="basecnn",
            labels=("benign", "malignant"),
            threshold=0.5,
            preprocessing=Preprocessing(image_size=(224, 224), mean=(0.5, 0.5, 0.5), std=(0.25, 0.25, 0.25)),
            weights_file="fork.safetensors",
            weights_sha256=hashlib.sha256(b"fork suite weights").hexdigest(),
        )
        card.save(work / "card.json")
        deployment = work / "deployment.json"
        with Anvil(host, port, chain_id, work / "state.json", work / "anvil.log"):
            deploy = [ape, "run", "deploy", "--network", "ethereum:devnet:node"]
            deploy += ["--model-card", str(work / "card.json"), "--out", str(deployment)]
            deploy += ["--fee", str(10**15), "--failure-fee", str(10**15 // 4)]  # overridden for the model:
            deploy += ["--model-fee", f"{card.name}={3 * 10**15},{10**15 // 2}"]
            subprocess.run(deploy, cwd=ROOT, check=True)
            env = {
                **os.environ,
                "HISTOCHAIN_FORK_DEPLOYMENT": str(deployment),
                "HISTOCHAIN_FORK_CARD": str(work / "card.json"),
            }
            test = [ape, "test", "tests/fork", "--network", "ethereum:devnet-fork:foundry", *sys.argv[1:]]
            return subprocess.run(test, cwd=ROOT, env=env).returncode


if __name__ == "__main__":
    sys.exit(main())
