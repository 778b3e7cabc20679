"""evaluate and compare on the CI-sized set; metrics helpers on known inputs."""

import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image
from sklearn.metrics import accuracy_score, f1_score, log_loss, precision_score, recall_score, roc_auc_score

from oracle.cli import main
from oracle.ml import metrics
from oracle.ml.card import ModelCard
from oracle.ml.compare import CompareError, compare, parse_models
from oracle.ml.evaluate import evaluate
from oracle.ml.train import TrainConfig
from tests.oracle.ml.conftest import PATIENTS


def test_patient_score_is_the_mean_of_its_images():
    names, labels, scores = metrics.by_patient(
        ["b", "a", "b", "a"], np.array([1, 0, 1, 0]), np.array([0.9, 0.2, 0.5, 0.4])
    )
    assert names == ["a", "b"]
    assert labels.tolist() == [0, 1]
    assert scores == pytest.approx([0.3, 0.7])


def test_point_metrics_on_a_known_case():
    m = metrics.point(np.array([0, 0, 1, 1]), np.array([0.1, 0.6, 0.4, 0.9]), 0.5)
    assert m["roc_auc"] == pytest.approx(0.75)
    assert m["accuracy"] == pytest.approx(0.5)
    assert m["precision"] == pytest.approx(0.5)
    assert m["recall"] == pytest.approx(0.5)
    assert m["loss"] == pytest.approx(-np.mean(np.log([0.9, 0.4, 0.4, 0.9])))


@pytest.mark.parametrize("seed", range(6))
def test_point_metrics_are_sklearns(seed: int):
    """The vectorised metrics against sklearn's own, on draws with ties, one class, or no positive
    prediction."""
    rng = np.random.default_rng(seed)
    n = int(rng.integers(2, 40))
    y = np.zeros(n, int) if seed == 0 else rng.integers(0, 2, n)
    p = rng.integers(0, 5, n) / 4 if seed % 2 else rng.uniform(0, 1, n)
    threshold = 1.1 if seed == 3 else 0.5
    predicted = (p >= threshold).astype(int)
    m = metrics.point(y, p, threshold)
    expected = {
        "accuracy": accuracy_score(y, predicted),
        "loss": log_loss(y, np.clip(p, 1e-7, 1 - 1e-7), labels=[0, 1]),
        "precision": precision_score(y, predicted, zero_division=0),
        "recall": recall_score(y, predicted, zero_division=0),
        "f1": f1_score(y, predicted, zero_division=0),
    }
    for name, value in expected.items():
        assert m[name] == pytest.approx(value), name
    if len(np.unique(y)) == 2:
        assert m["roc_auc"] == pytest.approx(roc_auc_score(y, p))
    else:
        assert np.isnan(m["roc_auc"])


def test_intervals_bracket_the_value():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 200)
    p = np.clip(y * 0.3 + rng.uniform(0, 0.7, 200), 0, 1)
    for name, m in metrics.with_intervals(y, p, 0.5, reps=300).items():
        assert m["low"] <= m["value"] <= m["high"], name
        assert m["high"] - m["low"] < 0.3, name


def test_evaluate_reports_both_levels_on_the_test_patients(trained: ModelCard, ci_config: TrainConfig):
    report = evaluate(ci_config.out, ci_config.data, "test", reps=200, progress=False)
    assert report["model_id"] == "0x" + trained.model_id.hex()
    assert report["patients"] == len(trained.data["patients"]["test"])
    assert report["images"] == trained.data["images"]["test"]
    assert report["image_level"]["roc_auc"]["value"] == pytest.approx(
        trained.metrics["test_roc_auc"], abs=1e-6
    )
    assert report["patient_level"]["roc_auc"]["value"] == pytest.approx(
        trained.metrics["test_patient_roc_auc"], abs=1e-6
    )
    everything = evaluate(ci_config.out, ci_config.data, "all", reps=50, progress=False)
    assert everything["patients"] == PATIENTS


def test_evaluate_command_prints_a_table_and_writes_json(
    trained: ModelCard, ci_config: TrainConfig, tmp_path: Path
):
    out = tmp_path / "report.json"
    result = CliRunner().invoke(
        main,
        [
            "evaluate",
            "--checkpoint",
            str(ci_config.out),
            "--data",
            str(ci_config.data),
            "--bootstrap",
            "50",
            "--json",
            str(out),
        ],
    )
    assert result.exit_code == 0, result.output
    assert "| roc_auc |" in result.output
    assert "patient level" in result.output
    assert json.loads(out.read_text())["model"] == trained.name


def test_compare_trains_each_model_and_their_ensemble(small_synthetic: Path, tmp_path: Path):
    base = TrainConfig(
        model="basecnn",
        data=small_synthetic,
        out=tmp_path,
        epochs=1,
        image_size=32,
        bootstrap=20,
        progress=False,
    )
    entries = parse_models("basecnn, efficientnet_lite0:imagenet")
    rows = compare(base, entries, tmp_path)
    assert [r["model"] for r in rows] == ["basecnn", "efficientnet_lite0:imagenet", "ensemble"]
    for row in rows:
        for metric in ("roc_auc", "accuracy", "precision", "recall", "f1"):
            assert 0 <= row[metric] <= 1
        assert row["loss"] > 0
        assert row["ms_per_image"] > 0
        assert (
            row["patient_roc_auc"]["low"] <= row["patient_roc_auc"]["value"] <= row["patient_roc_auc"]["high"]
        )
    assert rows[2]["parameters"] == rows[0]["parameters"] + rows[1]["parameters"]
    card = ModelCard.load(tmp_path / "efficientnet_lite0-imagenet" / "model-card.json")
    assert card.training["weights_init"] == "imagenet"
    assert "| ensemble |" in (tmp_path / "compare.md").read_text()
    for figure in ("compare.png", "compare-roc.png", "compare-confusion.png", "compare-grid.png"):
        with Image.open(tmp_path / figure) as image:
            image.verify()
    again = compare(base, entries, tmp_path, train_models=False)  # the same checkpoints, evaluated again
    assert [r["roc_auc"] for r in again] == [r["roc_auc"] for r in rows]


@pytest.mark.parametrize(
    ("models", "why"),
    [
        ("alexnet", "unknown model 'alexnet'"),
        ("basecnn:cifar", "weights are none or imagenet"),
        (" , ", "at least one"),
    ],
)
def test_compare_names_what_it_cannot_compare(models: str, why: str):
    with pytest.raises(CompareError, match=why):
        parse_models(models)


def test_reusing_a_missing_checkpoint_says_to_train(small_synthetic: Path, tmp_path: Path):
    base = TrainConfig(
        model="basecnn", data=small_synthetic, out=tmp_path, epochs=1, image_size=32, progress=False
    )
    with pytest.raises(CompareError, match="run with --train"):
        compare(base, parse_models("basecnn"), tmp_path, train_models=False)


def test_cli_errors_are_one_line(tmp_path: Path):
    result = CliRunner().invoke(
        main, ["train", "--model", "basecnn", "--data", str(tmp_path), "--out", str(tmp_path / "o")]
    )
    assert result.exit_code == 1
    assert "error:" in result.output
    assert "neither BreakHis" in result.output


def test_data_synth_command(tmp_path: Path):
    result = CliRunner().invoke(
        main, ["data", "synth", "--out", str(tmp_path), "--patients", "2", "--images-per-patient", "1"]
    )
    assert result.exit_code == 0, result.output
    assert "wrote 2 synthetic images of 2 patients" in result.output
    assert len(list(tmp_path.rglob("*.png"))) == 2
