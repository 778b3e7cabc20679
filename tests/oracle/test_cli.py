"""`histochain dev up` as a user runs it: a real anvil, a real deployment, Ctrl-C, and a restart."""

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import yaml
from web3 import HTTPProvider, Web3

from oracle.settings import Settings
from tests.support import free_port

ROOT = Path(__file__).resolve().parents[2]


def run_dev_up(data_dir: Path, port: int) -> str:
    """Runs `histochain dev up` until it is ready, checks the chain answers, then sends Ctrl-C."""
    env = {**os.environ, "HISTOCHAIN_DATA_DIR": str(data_dir), "HISTOCHAIN_CHAIN_PORT": str(port)}
    cli = Path(sys.executable).with_name("histochain")
    proc = subprocess.Popen([cli, "dev", "up"], env=env, stdout=subprocess.PIPE, text=True, cwd=data_dir)
    assert proc.stdout is not None
    lines = []
    for line in proc.stdout:
        lines.append(line)
        if line.startswith("Ctrl-C stops"):
            break
    assert Web3(HTTPProvider(f"http://127.0.0.1:{port}")).eth.chain_id == Settings().chain_id
    proc.send_signal(signal.SIGINT)
    rest, _ = proc.communicate(timeout=30)
    assert proc.returncode == 0, rest
    return "".join(lines) + rest


def test_dev_up_deploys_once_and_reuses_the_deployment_after_a_restart(tmp_path: Path) -> None:
    port = free_port()
    first = run_dev_up(tmp_path, port)
    assert f"http://127.0.0.1:{port}  (chain id 313370)" in first
    assert "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266" in first
    deployment = json.loads((tmp_path / "deployment.json").read_text())
    assert f"registry   {deployment['address']}  (deployed;" in first
    assert "chain state saved" in first

    second = run_dev_up(tmp_path, port)
    assert f"registry   {deployment['address']}  (reused;" in second


def test_dev_up_redeploys_on_a_fresh_chain(tmp_path: Path) -> None:
    port = free_port()
    run_dev_up(tmp_path, port)
    (tmp_path / "chain" / "state.json").unlink()
    assert "(deployed;" in run_dev_up(tmp_path, port)


def test_settings_defaults_match_the_devnet_in_ape_config() -> None:
    config = yaml.safe_load((ROOT / "ape-config.yaml").read_text())
    (devnet,) = [n for n in config["networks"]["custom"] if n["name"] == "devnet"]
    settings = Settings()
    assert devnet["chain_id"] == settings.chain_id
    assert config["node"]["ethereum"]["devnet"]["uri"] == settings.rpc_url
