"""Training as in the seed paper: Adam (lr 1e-3), binary cross-entropy, flip/rotation augmentation,
early stopping and learning-rate reduction on a validation-loss plateau, at most 35 epochs.
Seeded; AMP on a GPU; a progress bar per epoch; resumable from the state saved after each epoch
(kept after training, so a later run with more --epochs continues where this one stopped)."""

import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from numpy.typing import NDArray
from pydantic import BaseModel, ConfigDict, Field
from torch import nn
from tqdm import tqdm

from oracle.errors import HistochainError
from oracle.ml import checkpoint, gatecard, metrics, ood, plots
from oracle.ml.calibration import calibrate
from oracle.ml.card import ModelCard, Preprocessing
from oracle.ml.data.breakhis import LABELS, scan
from oracle.ml.data.split import PAPER_PROPORTIONS, Split, split_by_patient
from oracle.ml.inference import resolve_device
from oracle.ml.models import Weights, build, parameter_count, spec
from oracle.ml.preprocess import normalise
from oracle.ml.samples import load_images
from oracle.ml.statement import provenance

STATE_FILE = "train-state.pt"


class TrainingError(HistochainError):
    """Training could not start or resume as asked."""


class TrainConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    model: str
    data: Path
    out: Path
    name: str | None = None
    epochs: int = Field(35, ge=1)
    batch_size: int = Field(32, ge=1)
    lr: float = Field(1e-3, gt=0)
    image_size: int | None = Field(None, ge=16, description="Square side; default: the model's.")
    magnification: int | None = 400
    seed: int = 0
    proportions: tuple[float, float, float] = PAPER_PROPORTIONS
    patience: int = Field(6, ge=1, description="Epochs without validation-loss improvement before stopping.")
    lr_patience: int = Field(3, ge=1)
    lr_factor: float = Field(0.5, gt=0, lt=1)
    weights: Weights = "none"
    threshold: float = Field(0.5, gt=0, lt=1)
    bootstrap: int = Field(1000, ge=10, description="Resamples for the card's 95 % intervals.")
    device: str = "auto"
    progress: bool = True

    def resolved_device(self) -> torch.device:
        return resolve_device(self.device)

    def identity(self) -> dict[str, Any]:
        """What must match for a saved state to be resumed."""
        return self.model_dump(mode="json", exclude={"epochs", "device", "progress", "out"})


def seed_everything(seed: int) -> None:
    torch.manual_seed(seed)
    np.random.seed(seed % 2**32)


def _run_epoch(
    model: nn.Module,
    images: torch.Tensor,
    labels: torch.Tensor,
    preprocessing: Preprocessing,
    config: TrainConfig,
    device: torch.device,
    optimizer: torch.optim.Optimizer | None,
    scaler: torch.amp.GradScaler | None,
    desc: str,
) -> tuple[float, NDArray[Any]]:
    """One pass; trains when an optimizer is given. Returns mean loss and the probabilities in order."""
    training = optimizer is not None
    model.train(training)
    order = torch.randperm(len(images)) if training else torch.arange(len(images))
    loss_fn = nn.BCEWithLogitsLoss(reduction="sum")
    total, probs = 0.0, torch.empty(len(images))
    batches = range(0, len(images), config.batch_size)
    bar = tqdm(batches, desc=desc, unit="batch", leave=False, disable=not config.progress)
    for start in bar:
        idx = order[start : start + config.batch_size]
        x = normalise(images[idx].to(device, non_blocking=True), preprocessing)
        y = labels[idx].to(device).float()
        with torch.set_grad_enabled(training), torch.autocast(device.type, enabled=device.type == "cuda"):
            logits = model(x).float()
            loss = loss_fn(logits, y)
        if optimizer is not None:
            optimizer.zero_grad(set_to_none=True)
            if scaler is not None:
                scaler.scale(loss / len(idx)).backward()
                scaler.step(optimizer)
                scaler.update()
            else:
                (loss / len(idx)).backward()
                optimizer.step()
        total += float(loss.detach())
        probs[idx] = torch.sigmoid(logits.detach()).cpu()
        bar.set_postfix(loss=f"{total / min(len(images), start + len(idx)):.4f}")
    return total / len(images), probs.numpy()


def _accuracy(labels: torch.Tensor, probs: NDArray[Any], threshold: float) -> float:
    return float(((probs >= threshold).astype(int) == labels.numpy()).mean())


def train(config: TrainConfig, resume: bool = True) -> ModelCard:
    """Trains, keeps the weights of the best validation loss, evaluates on the test patients and
    writes model.safetensors, model-card.json and the plots to `config.out`."""
    started = time.monotonic()
    device = config.resolved_device()
    preprocessing = spec(config.model).preprocessing(config.image_size)
    seed_everything(config.seed)
    samples = scan(config.data, config.magnification)
    split = split_by_patient(samples, config.seed, config.proportions)
    for part in ("train", "validation", "test"):
        if not getattr(split, part):
            raise TrainingError(f"the {part} split is empty: {len(samples)} images of too few patients")

    images = {
        part: load_images(getattr(split, part), preprocessing, config.progress, part)
        for part in ("train", "validation", "test")
    }
    labels = {part: torch.tensor([s.label for s in getattr(split, part)]) for part in images}

    model = build(config.model, config.weights).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=config.lr)
    scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(
        optimizer, factor=config.lr_factor, patience=config.lr_patience
    )
    scaler = torch.amp.GradScaler("cuda") if device.type == "cuda" else None
    history: list[dict[str, float]] = []
    best: dict[str, Any] = {"loss": float("inf"), "epoch": 0, "state": None}
    bad_epochs, first_epoch = 0, 1

    config.out.mkdir(parents=True, exist_ok=True)
    state_path = config.out / STATE_FILE
    if resume and state_path.exists():
        state = torch.load(state_path, map_location=device, weights_only=True)
        if state["config"] != config.identity():
            raise TrainingError(
                f"{state_path} was saved by a different configuration; remove it or pass --no-resume"
            )
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        if scaler is not None and state["scaler"]:
            scaler.load_state_dict(state["scaler"])
        history, best, bad_epochs = state["history"], state["best"], state["bad_epochs"]
        started -= state.get("seconds", 0.0)  # the card counts every session's training time
        torch.set_rng_state(state["rng"])
        first_epoch = state["epoch"] + 1
        if config.progress:
            tqdm.write(f"resuming after epoch {state['epoch']}")

    for epoch in range(first_epoch, config.epochs + 1):
        if bad_epochs >= config.patience:
            break
        desc = f"epoch {epoch}/{config.epochs}"
        train_loss, train_p = _run_epoch(
            model,
            images["train"],
            labels["train"],
            preprocessing,
            config,
            device,
            optimizer,
            scaler,
            desc + " train",
        )
        val_loss, val_p = _run_epoch(
            model,
            images["validation"],
            labels["validation"],
            preprocessing,
            config,
            device,
            None,
            None,
            desc + " val",
        )
        scheduler.step(val_loss)
        record = {
            "epoch": epoch,
            "train_loss": train_loss,
            "val_loss": val_loss,
            "train_accuracy": _accuracy(labels["train"], train_p, config.threshold),
            "val_accuracy": _accuracy(labels["validation"], val_p, config.threshold),
            "lr": optimizer.param_groups[0]["lr"],
        }
        history.append(record)
        if val_loss < best["loss"]:
            best = {
                "loss": val_loss,
                "epoch": epoch,
                "state": {k: v.detach().clone() for k, v in model.state_dict().items()},
            }
            bad_epochs = 0
        else:
            bad_epochs += 1
        if config.progress:
            tqdm.write(
                f"{desc}: loss {train_loss:.4f} acc {record['train_accuracy']:.3f} | "
                f"val loss {val_loss:.4f} acc {record['val_accuracy']:.3f} | lr {record['lr']:.1e}"
            )
        torch.save(
            {
                "config": config.identity(),
                "epoch": epoch,
                "model": model.state_dict(),
                "optimizer": optimizer.state_dict(),
                "scheduler": scheduler.state_dict(),
                "scaler": scaler.state_dict() if scaler is not None else {},
                "history": history,
                "best": best,
                "bad_epochs": bad_epochs,
                "rng": torch.get_rng_state(),
                "seconds": time.monotonic() - started,
            },
            state_path,
        )

    if best["state"] is not None:
        model.load_state_dict(best["state"])
    model.eval()
    _, val_p = _run_epoch(
        model, images["validation"], labels["validation"], preprocessing, config, device, None, None, "val"
    )
    _, raw_test_p = _run_epoch(
        model, images["test"], labels["test"], preprocessing, config, device, None, None, "test"
    )
    y_test = labels["test"].numpy()
    calibration = calibrate((val_p, labels["validation"].numpy()), (raw_test_p, y_test))
    test_p = calibration.apply(raw_test_p)
    # on the calibrated P: the same decisions as the raw P at config.threshold
    threshold = float(calibration.apply([config.threshold])[0])
    test_metrics = metrics.point(y_test, test_p, threshold)
    fitted = ood.fit_on_splits(model, images, labels, preprocessing, device)
    features, distribution = fitted or (None, None)
    patients = [s.patient for s in split.test]
    _, py, pp = metrics.by_patient(patients, y_test, test_p)
    patient_metrics = metrics.point(py, pp, threshold)
    evaluation = {
        "split": "test",
        "images": len(y_test),
        "patients": len(py),
        "bootstrap": {"resamples": config.bootstrap, "seed": config.seed},
        "image_level": metrics.with_intervals(y_test, test_p, threshold, config.bootstrap, config.seed),
        "patient_level": metrics.with_intervals(py, pp, threshold, config.bootstrap, config.seed),
    }

    name = config.name or f"{config.model}-{preprocessing.image_size[0]}px-seed{config.seed}".lower()
    card = checkpoint.save(
        model,
        config.out,
        {
            "name": name,
            "architecture": config.model,
            "labels": LABELS,
            "threshold": threshold,
            "preprocessing": preprocessing,
            "calibration": calibration,
            "features": features,
            "metrics": {
                **{f"test_{k}": v for k, v in test_metrics.items()},
                **{f"test_patient_{k}": v for k, v in patient_metrics.items()},
            },
            "evaluation": evaluation,
            "gate": gatecard.summary(split, seed=config.seed),
            "data": describe_split(config, split),
            "training": {
                "epochs_run": len(history),
                "best_epoch": best["epoch"],
                "seconds": round(time.monotonic() - started, 1),
                "device": str(device),
                "parameters": parameter_count(model),
                "weights_init": config.weights,
                "optimizer": f"Adam(lr={config.lr})",
                "batch_size": config.batch_size,
                "history": history,
                "features_check": (
                    "fitted" if features else f"not fitted: under {ood.MIN_VALIDATION} validation images"
                ),
            },
        },
        distribution,
    )
    plots.run_figures(config.out, card, history, split.test, y_test, test_p)
    plots.reliability(y_test, raw_test_p, test_p, calibration, config.out / "reliability.png")
    return card


def describe_split(config: TrainConfig, split: Split) -> dict[str, Any]:
    return {
        "root": str(config.data),
        "provenance": provenance(config.data),
        "magnification": config.magnification,
        "split_seed": config.seed,
        "proportions": list(config.proportions),
        "images": {p: len(getattr(split, p)) for p in ("train", "validation", "test")},
        "patients": {p: split.patients(p) for p in ("train", "validation", "test")},
    }
