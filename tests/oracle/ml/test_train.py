"""The CI-sized training run: held-out patients, the card, the plots, resuming."""

from pathlib import Path

import pytest
import torch
from PIL import Image

from oracle.ml import checkpoint
from oracle.ml.card import ModelCard
from oracle.ml.train import STATE_FILE, TrainConfig, TrainingError, train
from tests.oracle.ml.conftest import IMAGE_SIZE, PATIENTS


def test_ci_sized_run_generalises_to_held_out_patients(trained: ModelCard):
    assert trained.metrics["test_roc_auc"] >= 0.85, trained.metrics
    assert trained.metrics["test_patient_roc_auc"] >= 0.85, trained.metrics


def test_ci_sized_run_is_calibrated_on_validation_patients(trained: ModelCard):
    """Temperature scaling fitted on the validation patients; on the held-out test patients the
    expected calibration error is at most 0.05 and no worse than the raw model's, and the card
    says what was done (no temperature where the validation images identify none)."""
    calibration = trained.calibration
    assert calibration is not None
    before, after = calibration.before["test"], calibration.after["test"]
    print(
        f"\ncalibration (CI-sized run, test patients' images): {calibration.describe()}; "
        f"ECE {before.ece:.4f} -> {after.ece:.4f}, Brier {before.brier:.4f} -> {after.brier:.4f}"
    )
    assert after.ece <= 0.05
    assert after.ece <= before.ece
    assert after.brier <= before.brier
    assert 0 < trained.threshold < 1


def test_card_records_a_patient_disjoint_split(trained: ModelCard, synthetic: Path):
    patients = trained.data["patients"]
    train_p, val_p, test_p = (set(patients[p]) for p in ("train", "validation", "test"))
    assert train_p
    assert val_p
    assert test_p
    assert not train_p & val_p
    assert not train_p & test_p
    assert not val_p & test_p
    assert len(train_p | val_p | test_p) == PATIENTS
    assert trained.data["split_seed"] == 0
    assert trained.data["proportions"] == [0.54, 0.136, 0.324]
    assert trained.labels == ("benign", "malignant")
    assert trained.preprocessing.image_size == (IMAGE_SIZE, IMAGE_SIZE)
    assert trained.training["epochs_run"] >= trained.training["best_epoch"] >= 1
    assert trained.training["seconds"] > 0


def test_plots_are_written_and_open_as_images(trained: ModelCard, ci_config: TrainConfig):
    for name in ("curves.png", "roc.png", "confusion.png", "test-grid.png", "reliability.png"):
        with Image.open(ci_config.out / name) as image:
            image.verify()
            assert image.format == "PNG"
            assert image.size[0] > 200


def test_checkpoint_reloads_with_the_same_id(trained: ModelCard, ci_config: TrainConfig):
    loaded = checkpoint.load(ci_config.out)
    assert loaded.card.model_id == trained.model_id
    assert loaded.card.weights_sha256 == checkpoint.sha256_file(ci_config.out / "model.safetensors")


def test_resume_continues_the_saved_run(small_synthetic: Path, tmp_path: Path):
    config = TrainConfig(
        model="basecnn",
        data=small_synthetic,
        out=tmp_path,
        epochs=2,
        image_size=32,
        bootstrap=20,
        progress=False,
    )
    first = train(config)
    assert [h["epoch"] for h in first.training["history"]] == [1, 2]
    state = torch.load(tmp_path / STATE_FILE, weights_only=True)
    assert state["epoch"] == 2

    longer = train(config.model_copy(update={"epochs": 3}))
    assert [h["epoch"] for h in longer.training["history"]] == [1, 2, 3]
    assert longer.training["seconds"] > state["seconds"] > 0  # the first session's time is counted
    assert longer.training["history"][:2] == first.training["history"]

    with pytest.raises(TrainingError, match="different configuration"):
        train(config.model_copy(update={"lr": 0.01, "epochs": 4}))
    fresh = train(config.model_copy(update={"lr": 0.01}), resume=False)
    assert [h["epoch"] for h in fresh.training["history"]] == [1, 2]


def test_too_few_patients_for_a_split(tmp_path: Path):
    from oracle.ml.data.synth import synthesize

    synthesize(tmp_path / "d", 2, 1, progress=False)
    with pytest.raises(TrainingError, match="split is empty"):
        train(TrainConfig(model="basecnn", data=tmp_path / "d", out=tmp_path / "o", epochs=1, progress=False))
