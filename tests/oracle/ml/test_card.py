"""Model cards: the modelId commits to what changes answers, and bad cards fail clearly."""

import hashlib
import json
from pathlib import Path

import pytest
import rfc8785
from eth_utils.crypto import keccak

from oracle.ml.card import ModelCard, ModelCardError, Preprocessing


def card(**changes: object) -> ModelCard:
    fields: dict[str, object] = {
        "name": "basecnn-test",
        "architecture": "basecnn",
        "labels": ("benign", "malignant"),
        "threshold": 0.5,
        "preprocessing": Preprocessing(image_size=(224, 224), mean=(0.5, 0.5, 0.5), std=(0.2, 0.2, 0.2)),
        "weights_file": "w.safetensors",
        "weights_sha256": hashlib.sha256(b"weights").hexdigest(),
    }
    return ModelCard(**(fields | changes))


def test_model_id_is_keccak_of_the_canonical_identity() -> None:
    c = card()
    assert c.model_id == keccak(rfc8785.dumps(c.identity()))
    assert set(c.identity()) == {
        "schema_version",
        "task",
        "architecture",
        "labels",
        "threshold",
        "preprocessing",
        "weights_sha256",
        "members",
    }
    assert c.identity()["preprocessing"]["resize"] == "pil-bilinear"
    assert c.identity()["task"] == "classification"  # DESIGN v2: the task kind is committed to


@pytest.mark.parametrize(
    "change",
    [
        {"weights_sha256": hashlib.sha256(b"other").hexdigest()},
        {"labels": ("malignant", "benign")},
        {"threshold": 0.4},
        {"preprocessing": Preprocessing(image_size=(128, 128), mean=(0.5, 0.5, 0.5), std=(0.2, 0.2, 0.2))},
        {"architecture": "vgg16"},
    ],
)
def test_model_id_changes_with_what_changes_answers(change: dict[str, object]) -> None:
    assert card(**change).model_id != card().model_id


def test_model_id_ignores_name_and_metrics() -> None:
    assert card(name="renamed", metrics={"auc": 0.9}).model_id == card().model_id


def test_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "card.json"
    card().save(path)
    assert ModelCard.load(path) == card()


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("not json", "not a valid model card"),
        (json.dumps({"name": "x"}), "architecture"),
        (json.dumps(card().model_dump(mode="json") | {"threshold": 1.5}), "threshold"),
        (json.dumps(card().model_dump(mode="json") | {"weights_sha256": "zz"}), "weights_sha256"),
        (json.dumps(card().model_dump(mode="json") | {"surprise": 1}), "surprise"),
    ],
)
def test_invalid_cards_fail_clearly(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "card.json"
    path.write_text(content)
    with pytest.raises(ModelCardError, match=message):
        ModelCard.load(path)


def test_missing_card_fails_clearly(tmp_path: Path) -> None:
    with pytest.raises(ModelCardError, match=r"card\.json"):
        ModelCard.load(tmp_path / "card.json")
