"""`histochain data synth`, `train`, `evaluate`, `compare`, `ensemble`."""

import json
from pathlib import Path

import click

from oracle.ml.data.split import PAPER_PROPORTIONS
from oracle.ml.names import CLASSIFIERS, ENSEMBLE

MODEL_NAMES = click.Choice(sorted(CLASSIFIERS))
EXISTING_DIR = click.Path(exists=True, file_okay=False, path_type=Path)


def _train_options(f: click.decorators.FC) -> click.decorators.FC:
    options = [
        click.option("--data", required=True, type=EXISTING_DIR, help="BreakHis folder (or class folders)."),
        click.option("--epochs", type=click.IntRange(min=1), default=35, show_default=True),
        click.option("--batch-size", type=click.IntRange(min=1), default=32, show_default=True),
        click.option("--lr", type=click.FloatRange(min=0, min_open=True), default=1e-3, show_default=True),
        click.option(
            "--image-size", type=click.IntRange(min=16), help="Square input side (default: the model's)."
        ),
        click.option(
            "--magnification",
            type=click.Choice(["40", "100", "200", "400", "all"]),
            default="400",
            show_default=True,
        ),
        click.option("--seed", type=int, default=0, show_default=True, help="Split and training seed."),
        click.option(
            "--patience",
            type=click.IntRange(min=1),
            default=6,
            show_default=True,
            help="Early-stopping patience (epochs).",
        ),
        click.option("--weights", type=click.Choice(["none", "imagenet"]), default="none", show_default=True),
        click.option(
            "--bootstrap",
            type=click.IntRange(min=10),
            default=1000,
            show_default=True,
            help="Resamples for the card's 95 % intervals.",
        ),
        click.option("--device", default="auto", show_default=True, help="auto, cpu, cuda, cuda:1, ..."),
    ]
    for option in reversed(options):
        f = option(f)
    return f


def _magnification(value: object) -> int | None:
    """The --magnification choice: `all`, or one of BreakHis's magnifications."""
    return None if value == "all" else int(str(value))


def _config_fields(kw: dict[str, object]) -> dict[str, object]:
    return kw | {
        "magnification": _magnification(kw.pop("magnification")),
        "proportions": PAPER_PROPORTIONS,
    }


@click.group()
def data() -> None:
    """Data sets."""


@data.command("synth")
@click.option("--out", required=True, type=click.Path(file_okay=False, path_type=Path))
@click.option("--patients", type=click.IntRange(min=2), default=96, show_default=True)
@click.option("--images-per-patient", type=click.IntRange(min=1), default=2, show_default=True)
@click.option("--seed", type=int, default=0, show_default=True)
def data_synth(out: Path, patients: int, images_per_patient: int, seed: int) -> None:
    """Write a SYNTHETIC H&E-like set in BreakHis's layout and names (not real tissue)."""
    from oracle.ml.data.synth import synthesize

    paths = synthesize(out, patients, images_per_patient, seed)
    click.echo(f"wrote {len(paths)} synthetic images of {patients} patients under {out}")


@click.command("train")
@click.option("--model", "model", required=True, type=MODEL_NAMES)
@click.option("--out", required=True, type=click.Path(file_okay=False, path_type=Path))
@click.option("--name", help="Model name on the card (default: <model>-<size>px-seed<seed>).")
@click.option(
    "--resume/--no-resume",
    default=True,
    show_default=True,
    help="Continue from the state saved after each epoch.",
)
@_train_options
def train_command(resume: bool, **kw: object) -> None:
    """Train a model; writes model.safetensors, model-card.json and plots to --out."""
    from oracle.ml.train import TrainConfig, train

    card = train(TrainConfig.model_validate(_config_fields(kw)), resume=resume)
    click.echo(f"model {card.name}  id 0x{card.model_id.hex()}")
    click.echo("test: " + "  ".join(f"{k.removeprefix('test_')} {v:.4f}" for k, v in card.metrics.items()))


@click.command("evaluate")
@click.option("--checkpoint", required=True, type=click.Path(exists=True, path_type=Path))
@click.option("--data", required=True, type=EXISTING_DIR)
@click.option("--split", "part", type=click.Choice(["test", "all"]), default="test", show_default=True)
@click.option(
    "--magnification", type=click.Choice(["40", "100", "200", "400", "all"]), default="400", show_default=True
)
@click.option("--bootstrap", type=click.IntRange(min=10), default=1000, show_default=True)
@click.option("--device", default="cpu", show_default=True)
@click.option(
    "--json", "json_out", type=click.Path(dir_okay=False, path_type=Path), help="Also write the report here."
)
def evaluate_command(
    checkpoint: Path,
    data: Path,
    part: str,
    magnification: str,
    bootstrap: int,
    device: str,
    json_out: Path | None,
) -> None:
    """ROC-AUC, accuracy, loss, precision, recall, F1 with bootstrap 95 % CIs, per image and per patient."""
    from oracle.ml.evaluate import evaluate, table

    report = evaluate(checkpoint, data, part, _magnification(magnification), bootstrap, device)  # type: ignore[arg-type]
    click.echo(table(report))
    if json_out:
        json_out.write_text(json.dumps(report, indent=2) + "\n")


@click.command("compare")
@click.option(
    "--models",
    required=True,
    help=f"Comma-separated, each NAME or NAME:imagenet: {', '.join(sorted(CLASSIFIERS))}.",
)
@click.option("--out", required=True, type=click.Path(file_okay=False, path_type=Path))
@click.option(
    "--train/--reuse",
    "train_models",
    default=True,
    show_default=True,
    help="Train each model (resuming a saved run), or reuse the checkpoints under --out.",
)
@_train_options
def compare_command(models: str, out: Path, train_models: bool, **kw: object) -> None:
    """Train and evaluate several models on one split, plus their ensemble (the paper's Table 10)."""
    from oracle.ml.compare import compare, parse_models, table
    from oracle.ml.train import TrainConfig

    entries = parse_models(models)
    base = TrainConfig.model_validate(_config_fields(kw) | {"model": entries[0].model, "out": out})
    click.echo(table(compare(base, entries, out, train_models)))


@click.command(ENSEMBLE)
@click.option(
    "--member", "members", multiple=True, required=True, type=click.Path(exists=True, path_type=Path)
)
@click.option("--out", required=True, type=click.Path(file_okay=False, path_type=Path))
@click.option("--name", required=True)
def ensemble_command(members: tuple[Path, ...], out: Path, name: str) -> None:
    """Combine trained checkpoints into one ensemble checkpoint (mean of probabilities)."""
    from oracle.ml.checkpoint import save_ensemble

    card = save_ensemble(members, out, name)
    click.echo(f"ensemble {card.name}  id 0x{card.model_id.hex()}  members {len(card.member_cards)}")


COMMANDS = [data, train_command, evaluate_command, compare_command, ensemble_command]
