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
        self.directory, self.device = directory, device
        self.cards: dict[str, tuple[Path, AnyCard]] = {}
        self._scan(strict=True)
        self._models: dict[str, Predictor | Upscaler] = {}

    def _scan(self, strict: bool = False) -> None:
        """Reads the cards not read yet. At start a bad card stops the oracle; later, one still
        being written is skipped until the next look."""
        known = {path for path, _ in self.cards.values()}
        for path in sorted(self.directory.rglob(CARD_FILE)) if self.directory.is_dir() else []:
            if path in known:
                continue
            try:
                card = load_card(path)
            except (ModelCardError, OSError, ValueError):
                if strict:
                    raise
                continue
            self.cards["0x" + card.model_id.hex()] = (path, card)

    def __contains__(self, model_id: str) -> bool:
        """Known here; a model registered on chain after the start (a checkpoint added to the
        directory since) is found by looking again. Only the registry's active models are asked
        about, so a look costs one listing of a small directory per model added."""
        if model_id not in self.cards:
            self._scan()
        return model_id in self.cards

    def card(self, model_id: str) -> AnyCard:
        if model_id not in self:
            raise ModelCardError(f"no checkpoint for model {model_id}")
        return self.cards[model_id][1]

    def policy(self, model_id: str, max_pixels: int = DEFAULT_MAX_PIXELS) -> InputPolicy | None:
        """What the model accepts (None: no such model here)."""
        return input_policy(self.cards[model_id][1], max_pixels) if model_id in self else None

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
