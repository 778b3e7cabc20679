"""Which checkpoint answers which on-chain modelId: every model-card.json under a directory.
torch loads with the first model, so a process that only routes jobs never loads it."""

from pathlib import Path
from typing import TYPE_CHECKING

from oracle.imaging import DEFAULT_MAX_PIXELS, InputPolicy
from oracle.ml.card import CARD_FILE, ModelCardError
from oracle.ml.cards import AnyCard, input_policy, load_card

if TYPE_CHECKING:
    import torch

    from oracle.ml.inference import Predictor
    from oracle.ml.sr.infer import Upscaler


class ModelCatalog:
    """Cards are read at start; weights are loaded (and sha256-checked) on first use, then kept."""

    def __init__(self, directory: Path, device: "torch.device | str" = "cpu") -> None:
        self.device = device
        self.cards: dict[str, tuple[Path, AnyCard]] = {}
        for path in sorted(directory.rglob(CARD_FILE)) if directory.is_dir() else []:
            card = load_card(path)
            self.cards["0x" + card.model_id.hex()] = (path, card)
        self._models: dict[str, Predictor | Upscaler] = {}

    def __contains__(self, model_id: str) -> bool:
        return model_id in self.cards

    def card(self, model_id: str) -> AnyCard:
        if model_id not in self.cards:
            raise ModelCardError(f"no checkpoint for model {model_id}")
        return self.cards[model_id][1]

    def policy(self, model_id: str, max_pixels: int = DEFAULT_MAX_PIXELS) -> InputPolicy | None:
        """What the model accepts (None: no such model here)."""
        return input_policy(self.cards[model_id][1], max_pixels) if model_id in self.cards else None

    def model(self, model_id: str) -> "Predictor | Upscaler":
        """The loaded model: a classifier's Predictor or a super-resolution Upscaler."""
        if model_id not in self._models:
            import torch

            from oracle.ml.sr.card import SrCard

            card = self.card(model_id)
            path, device = self.cards[model_id][0], torch.device(self.device)
            if isinstance(card, SrCard):
                from oracle.ml.sr import checkpoint as sr_checkpoint
                from oracle.ml.sr.infer import Upscaler

                self._models[model_id] = Upscaler(*sr_checkpoint.load(path, device), device)
            else:
                from oracle.ml import checkpoint
                from oracle.ml.inference import Predictor

                self._models[model_id] = Predictor(checkpoint.load(path, device), device)
        return self._models[model_id]
