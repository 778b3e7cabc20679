"""Checkpoints: save → load gives identical outputs and the same modelId; tampering is caught."""

from pathlib import Path

import pytest
import torch
from PIL import Image

from oracle.ml import checkpoint
from oracle.ml.card import ModelCard, ModelCardError
from oracle.ml.inference import Predictor
from oracle.ml.models import build, spec

LABELS = ("benign", "malignant")


def save_model(name: str, out: Path, seed: int, size: int = 48) -> ModelCard:
    torch.manual_seed(seed)
    model = build(name).eval()
    fields = {"name": f"{name}-t{seed}", "architecture": name, "labels": LABELS, "threshold": 0.5}
    return checkpoint.save(model, out, fields | {"preprocessing": spec(name).preprocessing(size)})


def images(count: int = 3) -> list[Image.Image]:
    gen = torch.Generator().manual_seed(3)
    return [
        Image.fromarray((torch.rand(60, 90, 3, generator=gen) * 255).byte().numpy()) for _ in range(count)
    ]


@pytest.mark.parametrize("name", ["basecnn", "mobilenet_v3_small"])
def test_save_load_round_trip(tmp_path: Path, name: str):
    torch.manual_seed(0)
    model = build(name).eval()
    card = checkpoint.save(
        model,
        tmp_path / "a",
        {
            "name": "m",
            "architecture": name,
            "labels": LABELS,
            "threshold": 0.5,
            "preprocessing": spec(name).preprocessing(48),
        },
    )
    loaded = checkpoint.load(tmp_path / "a")
    assert loaded.card == card
    assert loaded.card.model_id == ModelCard.load(tmp_path / "a" / "model-card.json").model_id
    x = torch.rand(2, 3, 48, 48)
    with torch.no_grad():
        assert torch.equal(model(x), loaded.members[0][1](x))

    checkpoint.save(
        loaded.members[0][1], tmp_path / "b", card.model_dump(exclude={"weights_file", "weights_sha256"})
    )
    assert (tmp_path / "b" / "model.safetensors").read_bytes() == (
        tmp_path / "a" / "model.safetensors"
    ).read_bytes()
    assert checkpoint.load(tmp_path / "b").card.model_id == card.model_id


def test_different_weights_different_model_id(tmp_path: Path):
    assert (
        save_model("basecnn", tmp_path / "a", 1).model_id != save_model("basecnn", tmp_path / "b", 2).model_id
    )


def test_tampered_weights_are_refused(tmp_path: Path):
    save_model("basecnn", tmp_path, 1)
    weights = tmp_path / "model.safetensors"
    data = bytearray(weights.read_bytes())
    data[-1] ^= 0x01
    weights.write_bytes(bytes(data))
    with pytest.raises(ModelCardError, match="does not match the card"):
        checkpoint.load(tmp_path)


def test_weights_of_another_architecture_are_refused(tmp_path: Path):
    card = save_model("basecnn", tmp_path, 1)
    forged = card.model_copy(update={"architecture": "vgg16"})
    forged.save(tmp_path / "model-card.json")
    with pytest.raises(ModelCardError, match="do not fit a vgg16"):
        checkpoint.load(tmp_path)


def test_missing_weights_are_named(tmp_path: Path):
    save_model("basecnn", tmp_path, 1)
    (tmp_path / "model.safetensors").unlink()
    with pytest.raises(ModelCardError, match="missing"):
        checkpoint.load(tmp_path)


def test_ensemble_is_the_mean_of_its_members(tmp_path: Path):
    a = save_model("basecnn", tmp_path / "a", 1, size=48)
    b = save_model("mobilenet_v3_small", tmp_path / "b", 2, size=64)
    card = checkpoint.save_ensemble([tmp_path / "a", tmp_path / "b"], tmp_path / "e", "pair")
    assert card.identity()["members"] == ["0x" + a.model_id.hex(), "0x" + b.model_id.hex()]

    batch = images()
    pa = Predictor(checkpoint.load(tmp_path / "a")).predict(batch)
    pb = Predictor(checkpoint.load(tmp_path / "b")).predict(batch)
    pe = Predictor(checkpoint.load(tmp_path / "e")).predict(batch)
    assert pe == pytest.approx((pa + pb) / 2, abs=1e-6)
    assert checkpoint.load(tmp_path / "e").card.model_id == card.model_id

    swapped = checkpoint.save_ensemble([tmp_path / "b", tmp_path / "a"], tmp_path / "s", "pair")
    assert swapped.model_id != card.model_id


def test_ensemble_needs_two_compatible_members(tmp_path: Path):
    save_model("basecnn", tmp_path / "a", 1)
    with pytest.raises(ModelCardError, match="at least two"):
        checkpoint.save_ensemble([tmp_path / "a"], tmp_path / "e", "one")
