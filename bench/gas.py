"""Gas of every ImageRegistry call that patients and oracles pay for, against the targets.

    .venv/bin/python -m bench.gas [--network ethereum:local:foundry]

Prints a table, writes bench/results/gas.json and gas.md, exits 1 when a target is missed.
Figures are receipts' gasUsed (deterministic for a given EVM version), with a 59-character CIDv1.
"""

import argparse
import json
import os
import platform
import sys
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from eth_utils.crypto import keccak

from oracle.chain.registry import image_id_for
from oracle.ipfs.cid import raw_cid

RESULTS = Path(__file__).parent / "results"
TIMEOUT = 3600
FEE = 10**15
MODEL = keccak(b"histochain gas bench model")
ZERO = b"\x00" * 32
BURN_GAS = 4  # HostileOwner.Mode.BurnGas (contracts/test/HostileOwner.sol)
BATCHES = (1, 8, 32)

# Operation -> maximum gas (per image for batches), from the contract issue.
TARGETS = {
    "registerImage (default model, no fee)": 55_000,
    "postResult (no fee)": 60_000,
    "postResults batch 32, per image (no fee)": 35_000,
}


@dataclass
class Row:
    operation: str
    gas: int
    target: int | None

    @property
    def met(self) -> bool | None:
        return None if self.target is None else self.gas <= self.target


def _registry(project: Any, admin: Any, oracle: Any, fee: int) -> Any:
    registry = project.ImageRegistry.deploy(admin, TIMEOUT, sender=admin)
    registry.grantRole(registry.ORACLE_ROLE(), oracle, sender=admin)
    registry.registerModel(
        MODEL, "bench", "ipfs://bench", fee, fee // 4, sender=admin
    )  # a failure refunds 3/4
    registry.setDefaultModel(MODEL, sender=admin)
    return registry


def measure(project: Any, chain: Any, accounts: Any) -> list[Row]:
    """Runs every operation on the connected provider; the caller owns isolation."""
    admin, oracle, patient = accounts[0], accounts[1], accounts[2]
    rows: list[Row] = []

    def add(operation: str, gas: int) -> None:
        rows.append(Row(operation, gas, TARGETS.get(operation)))

    for fee, label in ((0, "no fee"), (FEE, "fee paid")):
        registry = _registry(project, admin, oracle, fee)

        def register(model: bytes = ZERO, registry: Any = registry, fee: int = fee) -> tuple[bytes, int]:
            cid = raw_cid(os.urandom(32))
            assert len(cid) == 59
            tx = registry.registerImage(cid, model, sender=patient, value=fee)
            return bytes.fromhex(image_id_for(patient.address, cid)[2:]), tx.gas_used

        image, gas = register()
        add(f"registerImage (default model, {label})", gas)
        add(f"registerImage (named model, {label})", register(MODEL)[1])

        registry.postResult(image, b"\x01" * 32, sender=oracle)  # first post initialises counters
        image = register()[0]
        add(f"postResult ({label})", registry.postResult(image, b"\x01" * 32, sender=oracle).gas_used)

        for size in BATCHES:
            ids = [register()[0] for _ in range(size)]
            tx = registry.postResults(ids, [b"\x02" * 32] * size, sender=oracle)
            add(f"postResults batch {size}, per image ({label})", tx.gas_used // size)

        image = register()[0]
        add(f"reportFailure ({label})", registry.reportFailure(image, 1, sender=oracle).gas_used)
        if fee:  # the worst an owner can make a report cost: its receive() burns all it is given
            owner = project.HostileOwner.deploy(registry, sender=patient)
            owner.register(raw_cid(os.urandom(32)), sender=patient, value=fee)
            owner.setMode(BURN_GAS, sender=patient)
            tx = registry.reportFailure(owner.imageIds(0), 1, sender=oracle)
            add("reportFailure (fee paid, the owner's receive() burns its gas)", tx.gas_used)

        for size in BATCHES:
            ids = [register()[0] for _ in range(size)]
            tx = registry.reportFailures(ids, [1] * size, sender=oracle)
            add(f"reportFailures batch {size}, per image ({label})", tx.gas_used // size)

        image = register()[0]
        chain.pending_timestamp += TIMEOUT
        add(f"cancel ({label})", registry.cancel(image, sender=patient).gas_used)

    key = keccak(b"an oracle's x25519 public key")
    add("setEncryptionKey (first key)", registry.setEncryptionKey(key, sender=oracle).gas_used)
    add("setEncryptionKey (a new key)", registry.setEncryptionKey(keccak(key), sender=oracle).gas_used)
    return rows


def table(rows: list[Row]) -> str:
    lines = ["| operation | gas | target | met |", "|---|---:|---:|:---:|"]
    for row in rows:
        target = f"{row.target:,}" if row.target else ""
        met = {True: "yes", False: "**NO**", None: ""}[row.met]
        lines.append(f"| {row.operation} | {row.gas:,} | {target} | {met} |")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--network", default="ethereum:local:foundry")
    args = parser.parse_args()

    from ape import accounts, chain, networks, project
    from ape.logging import logger

    logger.set_level("WARNING")
    with networks.parse_network_choice(args.network):
        rows = measure(project, chain, accounts.test_accounts)
        client = chain.provider.web3.client_version
    RESULTS.mkdir(exist_ok=True)
    machine = {"network": args.network, "client": client, "python": platform.python_version()}
    (RESULTS / "gas.json").write_text(
        json.dumps({"machine": machine, "rows": [asdict(r) | {"met": r.met} for r in rows]}, indent=2) + "\n"
    )
    report = (
        f"# Gas report\n\nNetwork `{args.network}` ({client}); CIDv1 of 59 characters.\n\n{table(rows)}\n"
    )
    (RESULTS / "gas.md").write_text(report)
    print(report)
    missed = [r.operation for r in rows if r.met is False]
    if missed:
        print(f"targets missed: {missed}", file=sys.stderr)
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
