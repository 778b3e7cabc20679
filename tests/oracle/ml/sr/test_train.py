"""SR training: a checkpoint with its card, resumed where it stopped, SRGAN from an SRResNet, and
the `histochain sr` commands over it."""

import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from PIL import Image

from oracle.cli import main
from oracle.ml.card import CARD_FILE, ModelCardError
from oracle.ml.cards import load_card
from oracle.ml.checkpoint import WEIGHTS_FILE
from oracle.ml.sr import checkpoint
from oracle.ml.sr.card import SrCard
from oracle.ml.sr.train import STATE_FILE, SrTrainConfig, SrTrainingError, train


def config(out: Path, **changes: object) -> SrTrainConfig:
    fields: dict[str, object] = {
        "model": "srresnet",
        "out": out,
        "steps": 2,
        "batch_size": 2,
        "crop": 48,
        "synthetic": 1,
        "save_every": 1,
        "evaluate": False,
        "device": "cpu",
        "progress": False,
    }
    return SrTrainConfig.model_validate(fields | changes)


def test_a_checkpoint_is_weights_and_a_card_that_names_the_task(tiny_sr: tuple[Path, SrCard]) -> None:
    folder, card = tiny_sr
    assert load_card(folder / CARD_FILE) == card
    assert card.task == "super-resolution"
    assert card.input.scale == 4
    assert card.training["steps"] == 2
    assert len(card.training["history"]) == 2
    assert set(card.data["held_out"]).isdisjoint(card.data["training"])
    loaded, model = checkpoint.load(folder)
    assert loaded.model_id == card.model_id
    assert not model.training


def test_the_model_id_commits_to_the_task_weights_and_input_limits(tiny_sr: tuple[Path, SrCard]) -> None:
    _, card = tiny_sr
    ids = {
        card.model_id,
        card.model_copy(update={"weights_sha256": "0" * 64}).model_id,
        card.model_copy(update={"input": card.input.model_copy(update={"max_pixels": 1})}).model_id,
        card.model_copy(update={"architecture": "srgan"}).model_id,
    }
    assert len(ids) == 4
    assert card.model_copy(update={"metrics": {"psnr_y": 99.0}}).model_id == card.model_id


def test_weights_that_do_not_match_the_card_are_refused(tmp_path: Path, tiny_sr: tuple[Path, SrCard]) -> None:
    folder, _ = tiny_sr
    copy = tmp_path / "copy"
    copy.mkdir()
    (copy / CARD_FILE).write_bytes((folder / CARD_FILE).read_bytes())
    weights = bytearray((folder / WEIGHTS_FILE).read_bytes())
    weights[-1] ^= 1
    (copy / WEIGHTS_FILE).write_bytes(bytes(weights))
    with pytest.raises(ModelCardError, match="does not match the card"):
        checkpoint.load(copy)


def test_training_resumes_where_it_stopped_and_refuses_another_configuration(tmp_path: Path) -> None:
    first = train(config(tmp_path))
    assert (tmp_path / STATE_FILE).is_file()
    more = train(config(tmp_path, steps=3))
    assert more.training["steps"] == 3
    assert more.training["history"][:2] == first.training["history"]  # not trained again
    with pytest.raises(SrTrainingError, match="another configuration"):
        train(config(tmp_path, steps=4, lr=1e-3))
    restarted = train(config(tmp_path, steps=1, lr=1e-3), resume=False)
    assert restarted.training["steps"] == 1


def test_srgan_fine_tunes_an_srresnet_against_a_discriminator(
    tmp_path: Path, tiny_sr: tuple[Path, SrCard]
) -> None:
    with pytest.raises(SrTrainingError, match="--init"):
        train(config(tmp_path / "none", model="srgan"))
    card = train(config(tmp_path / "gan", model="srgan", init=tiny_sr[0], steps=2))
    assert card.architecture == "srgan"
    assert card.training["lr_decay_step"] == 1  # the paper's drop, half-way
    (first, second) = card.training["history"]
    assert {"content", "adversarial", "d"} <= first.keys()
    assert (first["lr"], second["lr"]) == (1e-4, pytest.approx(1e-5))
    assert card.weights_sha256 != tiny_sr[1].weights_sha256


def test_sr_evaluate_prints_the_papers_table_for_any_folder_and_writes_its_figure(
    tmp_path: Path, tiny_sr: tuple[Path, SrCard]
) -> None:
    data = tmp_path / "set"
    data.mkdir()
    for index, size in enumerate([(64, 48), (50, 42)]):
        Image.effect_mandelbrot(size, (-2, -1.2, 1, 1.2), 60 + index).convert("RGB").save(
            data / f"{index}.png"
        )
    out = tmp_path / "eval"
    result = CliRunner().invoke(
        main, ["sr", "evaluate", "--checkpoint", str(tiny_sr[0]), "--data", str(data), "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    assert "PSNR dB / SSIM" in result.output
    assert "bicubic" in result.output
    assert "mean" in result.output
    report = json.loads((out / "sr-eval.json").read_text())
    assert report["methods"] == ["bicubic", tiny_sr[1].name]
    assert [row["size"] for row in report["images"]] == ["64x48", "48x40"]  # cropped to multiples of 4
    assert report["means"]["bicubic"]["psnr"] == pytest.approx(
        sum(row["bicubic"]["psnr"] for row in report["images"]) / 2
    )
    with Image.open(out / "sr-crops.png") as figure:
        assert figure.width > 500
    missing = CliRunner().invoke(main, ["sr", "evaluate", "--checkpoint", str(tmp_path / "none")])
    assert missing.exit_code != 0
    assert "does not exist" in missing.output
