"""Ape compiles through the stand-in with OpenZeppelin from node_modules, and deploys on the active provider.

The suite runs this module on Ape's local provider and again on anvil (ethereum:local:foundry).
"""

from pathlib import Path

import pytest
import yaml
from ape import Project

from tests.toolchain.test_solc_standin import PROBE, ROOT


@pytest.fixture(scope="module")
def probe_project(tmp_path_factory: pytest.TempPathFactory) -> Project:
    path = tmp_path_factory.mktemp("probe")
    config = yaml.safe_load((ROOT / "ape-config.yaml").read_text())
    for dependency in config["dependencies"]:
        dependency["local"] = str(ROOT / dependency["local"])
    config["name"] = "probe"
    (path / "ape-config.yaml").write_text(yaml.safe_dump(config))
    (path / "contracts").mkdir()
    (path / "contracts" / "Probe.sol").write_text(PROBE)
    return Project(path)


def test_compiles_with_openzeppelin_import(probe_project: Project) -> None:
    contract = probe_project.Probe.contract_type
    assert "hasRole" in {abi.name for abi in contract.methods}
    bytecode = contract.deployment_bytecode.bytecode
    assert bytecode is not None
    assert len(bytecode) > 1000


def test_deploys_and_runs_on_the_active_provider(probe_project: Project, accounts, chain) -> None:  # type: ignore[no-untyped-def]
    admin, other = accounts[0], accounts[1]
    probe = probe_project.Probe.deploy(sender=admin)
    assert probe.hasRole(probe.DEFAULT_ADMIN_ROLE(), admin)
    assert not probe.hasRole(probe.DEFAULT_ADMIN_ROLE(), other)
    assert chain.provider.get_code(probe.address)


def test_compiled_sources_come_from_node_modules(probe_project: Project) -> None:
    sources = {str(p) for p in probe_project.sources.paths}
    assert any(s.endswith("contracts/Probe.sol") for s in sources)
    cached = Path(probe_project.contracts_folder) / ".cache/openzeppelin/5.7.0/access/AccessControl.sol"
    original = ROOT / "node_modules/@openzeppelin/contracts/access/AccessControl.sol"
    assert cached.read_text() == original.read_text()


def test_project_contracts_stay_within_apes_file_listing(project) -> None:
    """Ape lists at most 500 files of the contracts folder, the unpacked dependencies in .cache
    included; setup's OpenZeppelin copy leaves out the package's JSON build artifacts."""
    config = yaml.safe_load((ROOT / "ape-config.yaml").read_text())
    (openzeppelin,) = config["dependencies"]
    copy = ROOT / openzeppelin["local"]
    assert not (copy / "build").exists()
    assert (copy / "access" / "AccessControl.sol").is_file()
    ours = [p for p in (ROOT / "contracts").rglob("*") if p.is_file() and ".cache" not in p.parts]
    assert len(ours) + sum(1 for p in copy.rglob("*") if p.is_file()) < 450
    assert {"ImageRegistry", "HostileOwner"} <= set(project.contracts)
