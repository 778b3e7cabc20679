"""Which checkpoint answers which on-chain modelId: every model-card.json under a directory."""

from pathlib import Path

import torch

from oracle.ml import checkpoint
from oracle.ml.card import ModelCard, ModelCardError
from oracle.ml.inference import Predictor


class ModelCatalog:
    """Cards are read at start; weights are loaded (and sha256-checked) on first use, then kept."""

    def __init__(self, directory: Path, device: torch.device | str = "cpu") -> None:
        self.device = torch.device(device)
        self.cards: dict[str, Path] = {}
        for path in sorted(directory.rglob(checkpoint.CARD_FILE)) if directory.is_dir() else []:
            card = ModelCard.load(path)
            self.cards["0x" + card.model_id.hex()] = path
        self._predictors: dict[str, Predictor] = {}

    def __contains__(self, model_id: str) -> bool:
        return model_id in self.cards

    def predictor(self, model_id: str) -> Predictor:
        if model_id not in self._predictors:
            path = self.cards.get(model_id)
            if path is None:
                raise ModelCardError(f"no checkpoint for model {model_id}")
            self._predictors[model_id] = Predictor(checkpoint.load(path, self.device), self.device)
        return self._predictors[model_id]
