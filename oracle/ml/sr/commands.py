"""`histochain sr train` and `histochain sr evaluate`."""

from pathlib import Path

import click

from oracle.ml.names import SUPER_RESOLUTION
from oracle.ml.sr.card import MAX_INPUT_PIXELS

EXISTING_DIR = click.Path(exists=True, file_okay=False, path_type=Path)


@click.group()
def sr() -> None:
    """Super-resolution (4x): SRResNet and SRGAN."""


@sr.command("train")
@click.option("--model", "model", required=True, type=click.Choice(SUPER_RESOLUTION))
@click.option("--out", required=True, type=click.Path(file_okay=False, path_type=Path))
@click.option("--name", help="Model name on the card (default: <model>-x4-<steps>steps-seed<seed>).")
@click.option(
    "--init", type=click.Path(exists=True, path_type=Path), help="SRGAN: the SRResNet to start from."
)
@click.option("--steps", type=click.IntRange(min=1), default=2000, show_default=True)
@click.option("--batch-size", type=click.IntRange(min=1), default=16, show_default=True)
@click.option("--crop", type=click.IntRange(min=16), default=96, show_default=True, help="HR crop side.")
@click.option("--lr", type=click.FloatRange(min=0, min_open=True), default=1e-4, show_default=True)
@click.option(
    "--decay-at",
    type=click.FloatRange(min=0, max=1, min_open=True, max_open=True),
    help="Fraction of the steps after which lr x0.1 (SRGAN default 0.5; SRResNet none).",
)
@click.option("--synthetic", type=click.IntRange(min=0), default=24, show_default=True)
@click.option(
    "--max-pixels",
    type=click.IntRange(min=1, max=MAX_INPUT_PIXELS),
    default=256 * 256,
    show_default=True,
    help="Largest LR image the oracle will accept for this model.",
)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--device", default="auto", show_default=True)
@click.option("--resume/--no-resume", default=True, show_default=True)
def train_command(resume: bool, **kw: object) -> None:
    """Train on scikit-image's training photographs and synthetic fields; writes model.safetensors
    and model-card.json (with the held-out evaluation) to --out."""
    from oracle.ml.sr.train import SrTrainConfig, train

    card = train(SrTrainConfig.model_validate(kw), resume=resume)
    click.echo(f"model {card.name}  id 0x{card.model_id.hex()}")
    m = card.metrics
    click.echo(
        f"held-out: {m['psnr_y']:.2f} dB / {m['ssim_y']:.4f}  "
        f"(bicubic {m['bicubic_psnr_y']:.2f} dB / {m['bicubic_ssim_y']:.4f})"
    )


@sr.command("evaluate")
@click.option(
    "--checkpoint", "checkpoints", multiple=True, required=True, type=click.Path(exists=True, path_type=Path)
)
@click.option("--data", type=EXISTING_DIR, help="A folder of HR images (default: the held-out photographs).")
@click.option(
    "--out", type=click.Path(file_okay=False, path_type=Path), help="Write sr-eval.json/.txt and a figure."
)
@click.option("--figure-images", type=click.IntRange(min=0), default=3, show_default=True)
@click.option("--device", default="cpu", show_default=True)
def evaluate_command(
    checkpoints: tuple[Path, ...], data: Path | None, out: Path | None, figure_images: int, device: str
) -> None:
    """Y-PSNR and SSIM (4-px border) of each checkpoint and bicubic, as in the SR papers' tables."""
    from oracle.ml.sr import evaluate
    from oracle.ml.sr.data import EVALUATION, bundled, folder

    paths = folder(data) if data else bundled(EVALUATION)
    report = evaluate.evaluate_checkpoints(checkpoints, paths, device, keep=figure_images if out else 0)
    click.echo(report.table())
    if out:
        evaluate.write(report, out)
        click.echo(f"wrote {out}/sr-eval.json, sr-eval.txt" + (", sr-crops.png" if report.outputs else ""))
