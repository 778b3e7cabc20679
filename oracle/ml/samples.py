"""Images of a data set's samples, decoded: once into memory for training, or batch by batch
through a predictor for evaluation."""

from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
import torch
from numpy.typing import NDArray
from PIL import Image
from tqdm import tqdm

from oracle.ml.card import Preprocessing
from oracle.ml.data.breakhis import Sample
from oracle.ml.inference import Predictor
from oracle.ml.preprocess import resize


def load_images(
    samples: Sequence[Sample], preprocessing: Preprocessing, progress: bool, desc: str = "loading"
) -> torch.Tensor:
    """Decodes and resizes every image once: (N, H, W, 3) uint8, kept in memory for all epochs."""

    def one(sample: Sample) -> NDArray[Any]:
        with Image.open(sample.path) as image:
            return resize(image, preprocessing)

    with ThreadPoolExecutor(max_workers=4) as pool:
        arrays = list(
            tqdm(pool.map(one, samples), total=len(samples), desc=desc, unit="img", disable=not progress)
        )
    return torch.from_numpy(np.stack(arrays))


def predict_samples(
    predictor: Predictor, samples: Sequence[Sample], batch_size: int = 32, progress: bool = False
) -> NDArray[Any]:
    """Probabilities for samples, decoding images batch by batch."""
    out = []
    for start in tqdm(
        range(0, len(samples), batch_size), desc="predicting", unit="batch", disable=not progress
    ):
        batch = samples[start : start + batch_size]
        images = []
        for sample in batch:
            with Image.open(sample.path) as image:
                images.append(image.convert("RGB"))
        out.append(predictor.predict(images))
    return np.concatenate(out) if out else np.empty(0)
