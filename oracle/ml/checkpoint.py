"""Checkpoints: a safetensors file and the model card beside it. Loading checks the weights'
sha256 against the card before any tensor is used."""

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file
from torch import nn

from oracle.ml.card import CARD_FILE, ModelCard, ModelCardError
from oracle.ml.models import Classifier, build
from oracle.ml.names import ENSEMBLE
from oracle.ml.ood import PREFIX as FEATURE_PREFIX
from oracle.ml.ood import FeatureDistribution

WEIGHTS_FILE = "model.safetensors"


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def card_path(checkpoint: Path) -> Path:
    """A checkpoint is named by its folder or by its card file."""
    return checkpoint / CARD_FILE if checkpoint.is_dir() else checkpoint


def _state(model: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}


def save(
    model: nn.Module,
    out: Path,
    card_fields: dict[str, object],
    distribution: FeatureDistribution | None = None,
) -> ModelCard:
    """Writes the weights (and the feature check's tensors beside them), then the card that names
    their sha256; returns the card."""
    out.mkdir(parents=True, exist_ok=True)
    save_file(_state(model) | (distribution.tensors() if distribution else {}), str(out / WEIGHTS_FILE))
    card = ModelCard.model_validate(
        card_fields | {"weights_file": WEIGHTS_FILE, "weights_sha256": sha256_file(out / WEIGHTS_FILE)}
    )
    card.save(out / CARD_FILE)
    return card


@dataclass
class Loaded:
    """A loaded checkpoint: the card and one (card, module) per member (itself, unless an
    ensemble), with each member's feature distribution where its card names a feature check."""

    card: ModelCard
    members: list[tuple[ModelCard, Classifier]]
    distributions: list[FeatureDistribution | None]


def verified_weights(card_file: Path, weights_file: str, sha256: str) -> Path:
    """The weights file a card names, once its sha256 is the card's: no tensor of another is used."""
    weights = card_file.parent / weights_file
    if not weights.is_file():
        raise ModelCardError(f"{weights}: weights file named by {card_file} is missing")
    actual = sha256_file(weights)
    if actual != sha256:
        raise ModelCardError(f"{weights}: sha256 {actual} does not match the card's {sha256}")
    return weights


def load(checkpoint: Path, device: torch.device | str = "cpu") -> Loaded:
    path = card_path(checkpoint)
    card = ModelCard.load(path)
    weights = verified_weights(path, card.weights_file, card.weights_sha256)
    state = load_file(str(weights), device=str(device))
    if card.architecture != ENSEMBLE:
        module, distribution = _member(card, state, device)
        return Loaded(card, [(card, module)], [distribution])
    loaded = Loaded(card, [], [])
    for index, member in enumerate(card.member_cards):
        prefix = f"members.{index}."
        module, distribution = _member(
            member, {k.removeprefix(prefix): v for k, v in state.items() if k.startswith(prefix)}, device
        )
        loaded.members.append((member, module))
        loaded.distributions.append(distribution)
    return loaded


def _member(
    card: ModelCard, state: dict[str, torch.Tensor], device: torch.device | str
) -> tuple[Classifier, FeatureDistribution | None]:
    """One model's module, and its feature distribution (whose tensors share its file)."""
    distribution = FeatureDistribution.from_tensors(state)
    if (distribution is None) != (card.features is None):
        raise ModelCardError(
            f"{card.name}: the card {'names' if card.features else 'names no'} feature check, "
            f"the weights file {'holds none' if distribution is None else 'holds one'}"
        )
    weights = {k: v for k, v in state.items() if not k.startswith(FEATURE_PREFIX)}
    return _module(card.architecture, weights, device), distribution


def _module(architecture: str, state: dict[str, torch.Tensor], device: torch.device | str) -> Classifier:
    model = build(architecture)
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        raise ModelCardError(f"weights do not fit a {architecture}: {exc}") from exc
    return model.to(device).eval()


def save_ensemble(members: Sequence[Path], out: Path, name: str, threshold: float = 0.5) -> ModelCard:
    """An ensemble checkpoint holds its members' weights (prefixed) and their cards, so it loads alone."""
    if len(members) < 2:
        raise ModelCardError("an ensemble needs at least two members")
    loaded = [load(m) for m in members]
    cards = [item.card for item in loaded]
    if any(c.architecture == ENSEMBLE for c in cards):
        raise ModelCardError("ensembles of ensembles are not supported")
    labels = {c.labels for c in cards}
    if len(labels) != 1:
        raise ModelCardError(f"members disagree on labels: {sorted(labels)}")
    state = {}
    for index, item in enumerate(loaded):
        (_, module), distribution = item.members[0], item.distributions[0]
        member_state = _state(module) | (distribution.tensors() if distribution else {})
        state.update({f"members.{index}.{k}": v for k, v in member_state.items()})
    out.mkdir(parents=True, exist_ok=True)
    save_file(state, str(out / WEIGHTS_FILE))
    card = ModelCard(
        name=name,
        architecture=ENSEMBLE,
        labels=cards[0].labels,
        threshold=threshold,
        preprocessing=cards[0].preprocessing,
        weights_file=WEIGHTS_FILE,
        weights_sha256=sha256_file(out / WEIGHTS_FILE),
        member_cards=tuple(cards),
        data=cards[0].data,
    )
    card.save(out / CARD_FILE)
    return card
