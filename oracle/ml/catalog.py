"""Which checkpoint answers which on-chain modelId: every model-card.json under a directory.
torch loads with the first predictor, so a process that only routes jobs never loads it."""

from pathlib import Path
from typing import TYPE_CHECKING

from oracle.ml.card import CARD_FILE, ModelCard, ModelCardError

if TYPE_CHECKING:
    import torch

    from oracle.ml.inference import Predictor


class ModelCatalog:
    """Cards are read at start; weights are loaded (and sha256-checked) on first use, then kept."""

    def __init__(self, directory: Path, device: "torch.device | str" = "cpu") -> None:
        self.device = device
        self.cards: dict[str, Path] = {}
        for path in sorted(directory.rglob(CARD_FILE)) if directory.is_dir() else []:
            card = ModelCard.load(path)
            self.cards["0x" + card.model_id.hex()] = path
        self._predictors: dict[str, Predictor] = {}

    def __contains__(self, model_id: str) -> bool:
        return model_id in self.cards

    def predictor(self, model_id: str) -> "Predictor":
        if model_id not in self._predictors:
            import torch

            from oracle.ml import checkpoint
            from oracle.ml.inference import Predictor

            path = self.cards.get(model_id)
            if path is None:
                raise ModelCardError(f"no checkpoint for model {model_id}")
            device = torch.device(self.device)
            self._predictors[model_id] = Predictor(checkpoint.load(path, device), device)
        return self._predictors[model_id]
