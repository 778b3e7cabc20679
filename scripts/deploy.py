"""ape run deploy --network ethereum:devnet:node [--oracle ADDR] [--model-card card.json] ...

Deploys the ImageRegistry, grants the oracle role, registers the models of the given cards, each
with its fee, and writes the deployment file the oracle and the page read.
"""

from pathlib import Path

import click
from ape import accounts, chain, project
from ape.cli import ConnectedProviderCommand

from oracle.chain.deploy import Terms, deploy_registry
from oracle.ml.card import ModelCard

# Networks whose accounts are anvil's well-known test keys; anywhere else, name real ones.
DEV_NETWORKS = {"local", "devnet", "devnet-fork"}
WEI = click.IntRange(min=0, max=2**96 - 1)


def model_terms(ctx, param, values) -> dict[str, Terms]:  # type: ignore[no-untyped-def]
    """NAME=FEE or NAME=FEE,FAILURE_FEE (wei) into {name: (fee, failure fee)}."""
    terms: dict[str, Terms] = {}
    for value in values:
        name, _, fees = value.partition("=")
        fee, _, failure = fees.partition(",")
        try:
            terms[name] = (WEI.convert(fee, param, ctx), WEI.convert(failure or "0", param, ctx))
        except click.BadParameter as exc:
            raise click.BadParameter(f"{value!r}: expected NAME=FEE[,FAILURE_FEE] in wei ({exc})") from exc
    return terms


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
    "--fee", type=WEI, default=0, show_default=True, help="Every model's fee in wei, unless --model-fee."
)
@click.option(
    "--failure-fee",
    type=WEI,
    default=0,
    show_default=True,
    help="Wei a failed request keeps of its fee (at most --fee): set it at least to what reporting a "
    "failure costs the oracle (README: the economics).",
)
@click.option(
    "--model-fee",
    "model_fees",
    multiple=True,
    callback=model_terms,
    metavar="NAME=FEE[,FAILURE_FEE]",
    help="One model's own terms in wei (repeatable): a 4x image costs more to make than a label.",
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
def cli(network, alias, oracles, fee, failure_fee, model_fees, timeout, card_paths, default_model, out):  # type: ignore[no-untyped-def]
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
        request_timeout=timeout,
        cards=cards,
        default_model=default_model,
        terms=(fee, failure_fee),
        model_terms=model_fees,
    )
    deployment.save(out)
    click.echo(
        f"ImageRegistry {deployment.address} on chain {deployment.chain_id} at block {deployment.block}"
    )
    click.echo(f"deployment written to {out}")
