"""The solc-js stand-in must look like an installed solc to py-solc-x and compile real sources."""

import json
import os
import subprocess
from pathlib import Path

import pytest
import solcx
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[2]
SOLC_VERSION = Version(json.loads((ROOT / "node_modules/solc/package.json").read_text())["version"])

PROBE = """// SPDX-License-Identifier: MIT
pragma solidity ^0.8.20;

import {AccessControl} from "@openzeppelin/contracts/access/AccessControl.sol";

contract Probe is AccessControl {
    constructor() {
        _grantRole(DEFAULT_ADMIN_ROLE, msg.sender);
    }
}
"""


def standard_json(source: str, remap_to: str) -> dict[str, object]:
    return {
        "language": "Solidity",
        "sources": {"Probe.sol": {"content": source}},
        "settings": {
            "remappings": [f"@openzeppelin/contracts/={remap_to}/"],
            "outputSelection": {"*": {"*": ["abi", "evm.bytecode.object"]}},
        },
    }


def test_py_solc_x_sees_the_stand_in_as_installed() -> None:
    assert SOLC_VERSION in solcx.get_installed_solc_versions()
    executable = solcx.install.get_executable(SOLC_VERSION)
    assert executable.parent == Path(os.environ["SOLCX_BINARY_PATH"])
    assert solcx.wrapper.get_solc_version(executable) == SOLC_VERSION


def test_compiles_a_contract_importing_openzeppelin() -> None:
    output = solcx.compile_standard(
        standard_json(PROBE, "node_modules/@openzeppelin/contracts"),
        solc_version=SOLC_VERSION,
        base_path=ROOT,
    )
    probe = output["contracts"]["Probe.sol"]["Probe"]
    functions = {item["name"] for item in probe["abi"] if item["type"] == "function"}
    assert {"hasRole", "grantRole", "revokeRole", "DEFAULT_ADMIN_ROLE"} <= functions
    assert len(probe["evm"]["bytecode"]["object"]) > 1000
    assert "node_modules/@openzeppelin/contracts/access/AccessControl.sol" in output["sources"]


def test_missing_import_is_a_compiler_error_naming_the_file() -> None:
    with pytest.raises(solcx.exceptions.SolcError) as info:
        solcx.compile_standard(
            standard_json(PROBE, "node_modules/no-such-package"),
            solc_version=SOLC_VERSION,
            base_path=ROOT,
        )
    assert "no-such-package/access/AccessControl.sol" in str(info.value)


def test_unsupported_option_fails_clearly() -> None:
    solc = solcx.install.get_executable(SOLC_VERSION)
    result = subprocess.run([solc, "--bin", "x.sol"], capture_output=True, text=True)
    assert result.returncode == 1
    assert "unsupported option: --bin" in result.stderr
