"""Calibration of P(malignant): temperature scaling (Guo et al., 2017), fitted on the validation
patients, and the two measures it is judged by.

A network trained on few patients is overconfident: its 0.99 is right far less than 99 % of the
time. Dividing its logit by one temperature T > 0, chosen to minimise the validation patients'
negative log-likelihood, keeps every decision at threshold 0.5 (the logit's sign is kept) and makes
the probability mean what it says. ECE: the images binned by predicted P(positive) into BINS equal
bins; the mean |observed positive rate - mean predicted P| weighted by the bin's share. Brier: the
mean squared error of P against the label."""

import numpy as np
import numpy.typing as npt
from scipy.optimize import minimize_scalar
from sklearn.metrics import brier_score_loss

from oracle.ml.card import BINS, Calibration, Scores, logit, scale
from oracle.ml.metrics import log_loss

T_RANGE = (0.05, 20.0)


def nll(p: npt.ArrayLike, y: npt.ArrayLike) -> float:
    """Log loss, as `metrics.point` takes it."""
    return float(log_loss(np.asarray(y), np.asarray(p)))


def ece(p: npt.ArrayLike, y: npt.ArrayLike, bins: int = BINS) -> float:
    probs, labels = np.asarray(p, dtype=np.float64), np.asarray(y, dtype=np.float64)
    which = np.minimum((probs * bins).astype(int), bins - 1)
    total = 0.0
    for b in range(bins):
        inside = which == b
        if inside.any():
            total += inside.mean() * abs(labels[inside].mean() - probs[inside].mean())
    return float(total)


def brier(p: npt.ArrayLike, y: npt.ArrayLike) -> float:
    return float(brier_score_loss(y, p, pos_label=1))


def scores(p: npt.ArrayLike, y: npt.ArrayLike) -> Scores:
    return Scores(ece=ece(p, y), brier=brier(p, y), nll=nll(p, y))


def fit_temperature(p: npt.ArrayLike, y: npt.ArrayLike) -> float | None:
    """The T in T_RANGE minimising the negative log-likelihood of `y` under scale(p, T); None
    when the data hold no finite optimum: unless the model is right on some images and wrong on
    others, sharper (all right) or flatter (all wrong) is always better."""
    logits, labels = logit(p), np.asarray(y, dtype=np.float64)
    right = (logits > 0) == (labels > 0.5)
    if right.all() or not right.any():
        return None
    low, high = np.log(T_RANGE[0]), np.log(T_RANGE[1])
    found = minimize_scalar(
        lambda log_t: nll(scale(p, float(np.exp(log_t))), y), bounds=(low, high), method="bounded"
    )
    return float(np.exp(found.x))


def calibrate(
    validation: tuple[npt.ArrayLike, npt.ArrayLike], test: tuple[npt.ArrayLike, npt.ArrayLike]
) -> Calibration:
    """Fits T on the validation (probabilities, labels) and scores both splits before and after.
    Where no temperature is identifiable, T stays 1 and the card says so."""
    fitted = fit_temperature(*validation)
    splits = {"validation": validation, "test": test}
    before = {name: scores(p, y) for name, (p, y) in splits.items()}
    if fitted is None:
        return Calibration(temperature=1.0, identified=False, before=before, after=before)
    after = {name: scores(scale(p, fitted), y) for name, (p, y) in splits.items()}
    return Calibration(temperature=fitted, before=before, after=after)
