"""SR checkpoints: the generator's safetensors file and its card, sha256-checked on load."""

from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from oracle.ml.card import CARD_FILE, ModelCardError
from oracle.ml.checkpoint import WEIGHTS_FILE, card_path, sha256_file, verified_weights
from oracle.ml.sr.card import SrCard
from oracle.ml.sr.models import SRResNet


def save(model: SRResNet, out: Path, card_fields: dict[str, object]) -> SrCard:
    out.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    save_file(state, str(out / WEIGHTS_FILE))
    card = SrCard.model_validate(
        card_fields | {"weights_file": WEIGHTS_FILE, "weights_sha256": sha256_file(out / WEIGHTS_FILE)}
    )
    card.save(out / CARD_FILE)
    return card


def load(checkpoint: Path, device: torch.device | str = "cpu") -> tuple[SrCard, SRResNet]:
    path = card_path(checkpoint)
    card = SrCard.load(path)
    weights = verified_weights(path, card.weights_file, card.weights_sha256)
    model = SRResNet()
    try:
        model.load_state_dict(load_file(str(weights), device=str(device)), strict=True)
    except RuntimeError as exc:
        raise ModelCardError(f"{weights}: does not fit an SRResNet generator: {exc}") from exc
    return card, model.to(device).eval()
