"""Any checkpoint's card, read by its `task`: a classifier's (oracle/ml/card.py) or a
super-resolution model's (oracle/ml/sr/card.py). Neither imports torch."""

import json
from pathlib import Path

from oracle.imaging import InputPolicy
from oracle.ml.card import ModelCard, ModelCardError
from oracle.ml.names import CLASSIFICATION_TASK, SUPER_RESOLUTION_TASK
from oracle.ml.sr.card import SrCard

AnyCard = ModelCard | SrCard


def load_card(path: Path) -> AnyCard:
    try:
        task = json.loads(path.read_text()).get("task", CLASSIFICATION_TASK)
    except (OSError, json.JSONDecodeError, AttributeError) as exc:
        raise ModelCardError(f"{path}: not a valid model card: {exc}") from exc
    if task == SUPER_RESOLUTION_TASK:
        return SrCard.load(path)
    if task == CLASSIFICATION_TASK:
        return ModelCard.load(path)
    raise ModelCardError(f"{path}: unknown task {task!r}")


def input_policy(card: AnyCard, max_pixels: int) -> InputPolicy:
    """What the oracle accepts for this model, within the operator's `max_pixels`: a classifier
    reads a reduced copy of any image that passes the tissue gate; a super-resolution model reads
    every pixel, so its card's limits refuse what would cost too much, and any picture may be
    upscaled."""
    if isinstance(card, SrCard):
        return InputPolicy(
            min(max_pixels, card.input.max_pixels), refuse_side=card.input.max_side, tissue=False
        )
    return InputPolicy(max_pixels)
