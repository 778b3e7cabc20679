"""ape run deploy --network ethereum:devnet:node [--oracle ADDR] [--model-card card.json] ...

Deploys the ImageRegistry, grants the oracle role, registers the models of the given cards and
writes the deployment file the oracle and the page read.
"""

from pathlib import Path

import click
from ape import accounts, chain, project
from ape.cli import ConnectedProviderCommand

from oracle.chain.deploy import deploy_registry
from oracle.ml.card import ModelCard

# Networks whose accounts are anvil's well-known test keys; anywhere else, name real ones.
DEV_NETWORKS = {"local", "devnet", "devnet-fork"}


@click.command(cls=ConnectedProviderCommand)
@click.option(
    "--account", "alias", help="Ape account alias of the deployer (default on dev chains: test account 0)."
)
@click.option(
    "--oracle",
    "oracles",
    multiple=True,
    help="Address to grant the oracle role (repeatable; default on dev chains: test account 1).",
)
@click.option(
    "--fee",
    type=click.IntRange(min=0, max=2**96 - 1),
    default=0,
    show_default=True,
    help="Request fee in wei.",
)
@click.option(
    "--failure-fee",
    type=click.IntRange(min=0, max=2**96 - 1),
    default=0,
    show_default=True,
    help="Wei a failed request keeps of its fee (at most --fee): set it at least to what reporting a "
    "failure costs the oracle (README: the economics).",
)
@click.option(
    "--timeout",
    type=click.IntRange(min=1, max=2**32 - 1),
    default=3600,
    show_default=True,
    help="Seconds before a pending request may be cancelled.",
)
@click.option(
    "--model-card",
    "card_paths",
    multiple=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Model card JSON to register (repeatable).",
)
@click.option("--default-model", help="Name of the default model (default: the first card's).")
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    default=Path("data/deployment.json"),
    show_default=True,
)
def cli(network, alias, oracles, fee, failure_fee, timeout, card_paths, default_model, out):  # type: ignore[no-untyped-def]
    dev = network.name in DEV_NETWORKS
    if alias:
        sender = accounts.load(alias)
    elif dev:
        sender = accounts.test_accounts[0]
    else:
        raise click.UsageError(f"--account is required on {network.name}")
    if not oracles:
        if not dev:
            raise click.UsageError(f"--oracle is required on {network.name}")
        oracles = (accounts.test_accounts[1].address,)
    cards = [ModelCard.load(path) for path in card_paths]
    deployment = deploy_registry(
        project,
        chain,
        sender,
        oracles=oracles,
        request_fee=fee,
        failure_fee=failure_fee,
        request_timeout=timeout,
        cards=cards,
        default_model=default_model,
    )
    deployment.save(out)
    click.echo(
        f"ImageRegistry {deployment.address} on chain {deployment.chain_id} at block {deployment.block}"
    )
    click.echo(f"deployment written to {out}")
