"""The feature-space check: Mahalanobis distance to the training classes, threshold from
validation; what it lets through and what it refuses."""

import shutil
from pathlib import Path

import numpy as np
import pytest
import skimage.data
from PIL import Image

from oracle.gate import check_tissue
from oracle.ml import checkpoint
from oracle.ml.card import CARD_FILE, ModelCard, ModelCardError
from oracle.ml.data.breakhis import scan
from oracle.ml.inference import Predictor
from oracle.ml.ood import FeatureDistribution, fit
from oracle.ml.train import TrainConfig


def classes(seed: int, n: int, dim: int = 16) -> tuple[np.ndarray, np.ndarray]:
    """Two correlated Gaussian classes, one unit apart on every axis."""
    rng = np.random.default_rng(seed)
    mixing = np.random.default_rng(0).normal(0, 1, (dim, dim)) / np.sqrt(dim)
    labels = rng.integers(0, 2, n)
    return rng.normal(0, 1, (n, dim)) @ mixing + labels[:, None], labels


def test_the_distance_is_mahalanobis_to_the_nearest_class_mean() -> None:
    distribution = FeatureDistribution(
        np.array([[0.0, 0.0], [10.0, 0.0]]), np.array([[4.0, 0.0], [0.0, 1.0]])
    )
    assert distribution.distance([[1.0, 0.0], [10.0, 3.0], [5.0, 0.0]]) == pytest.approx([2.0, 3.0, 10.0])


def test_held_out_images_of_the_training_classes_pass_and_far_ones_are_refused() -> None:
    train, validation, test = classes(1, 400), classes(2, 100), classes(3, 2000)
    check, distribution = fit(train, validation[0])
    assert check.threshold == pytest.approx(1.25 * distribution.distance(validation[0]).max())
    assert check.dimensions == 16
    refused_held_out = float((distribution.distance(test[0]) > check.threshold).mean())
    print(f"\nfalse refusals of held-out in-distribution points: {refused_held_out:.2%}")
    assert refused_held_out <= 0.02
    rng = np.random.default_rng(4)
    shifted = test[0][:200] + rng.normal(0, 1, 16) * 3  # one direction, far from both classes
    assert (distribution.distance(shifted) > check.threshold).all()


def test_the_check_s_tensors_live_in_the_weights_file_and_the_model_id_commits_to_it(
    trained: ModelCard, ci_config: TrainConfig
) -> None:
    features = trained.features
    assert features is not None
    (distribution,) = checkpoint.load(ci_config.out).distributions
    assert distribution is not None
    assert distribution.means.shape == (2, features.dimensions)
    assert np.allclose(distribution.precision, distribution.precision.T)
    assert (ci_config.out / CARD_FILE).stat().st_size < 1_000_000  # matrices stay out of the card
    looser = trained.model_copy(
        update={"features": features.model_copy(update={"threshold": features.threshold * 2})}
    )
    assert looser.model_id != trained.model_id
    print(f"\nfeature check (CI-sized run): threshold {features.threshold:.2f}, refused {features.refused}")
    assert features.refused["validation"] == 0.0
    assert features.refused["test"] <= 0.02


def test_a_card_and_a_weights_file_that_disagree_on_the_check_are_refused(
    trained: ModelCard, ci_config: TrainConfig, tmp_path: Path
) -> None:
    target = tmp_path / "copy"
    shutil.copytree(ci_config.out, target)
    card = ModelCard.load(target / CARD_FILE)
    card.model_copy(update={"features": None}).save(target / CARD_FILE)
    with pytest.raises(ModelCardError, match="the weights file holds one"):
        checkpoint.load(target)


def he_tinted(name: str) -> Image.Image:
    """A photograph that ships in scikit-image's wheel, its grey levels painted in H&E's colours
    (hematoxylin purple to eosin pink) with sensor noise: pixels like a stained section's."""
    grey = np.asarray(Image.fromarray(getattr(skimage.data, name)()).convert("L"), dtype=np.float64) / 255
    purple, pink = np.array([95.0, 48.0, 135.0]), np.array([235.0, 175.0, 205.0])
    rgb = purple * (1 - grey[..., None]) + pink * grey[..., None]
    rgb += np.random.default_rng(0).normal(0, 6, rgb.shape)
    return Image.fromarray(np.clip(rgb, 0, 255).astype(np.uint8))


PHOTOS = ("astronaut", "camera", "coffee", "brick", "grass", "gravel", "text", "moon")


def test_tinted_photographs_pass_the_pixel_gate_and_the_feature_check_refuses_them(
    trained: ModelCard, ci_config: TrainConfig
) -> None:
    predictor = Predictor(checkpoint.load(ci_config.out))
    photos = [he_tinted(name) for name in PHOTOS]
    for photo in photos:
        check_tissue(np.asarray(photo))  # raises NotTissue if the pixel checks caught it
    refused = predictor.assess(photos).refused
    assert all(refused), dict(zip(PHOTOS, refused, strict=True))
    assert "far from every training image" in str(refused[0])


def test_held_out_tissue_passes_the_feature_check(trained: ModelCard, ci_config: TrainConfig) -> None:
    predictor = Predictor(checkpoint.load(ci_config.out))
    test_patients = set(trained.data["patients"]["test"])
    samples = [s for s in scan(ci_config.data, 400) if s.patient in test_patients]
    refused = []
    for start in range(0, len(samples), 64):
        images = []
        for sample in samples[start : start + 64]:
            with Image.open(sample.path) as image:
                images.append(image.convert("RGB"))
        refused += [r for r in predictor.assess(images).refused if r]
    print(f"\nfeature check: {len(refused)} of {len(samples)} held-out tissue images refused")
    assert len(refused) / len(samples) <= 0.02
