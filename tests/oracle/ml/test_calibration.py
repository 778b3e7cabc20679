"""Temperature scaling: an overconfident model's probabilities made to mean what they say,
decisions at 0.5 kept."""

import numpy as np

from oracle.ml.calibration import calibrate, ece, fit_temperature, scale


def overconfident(seed: int, n: int = 4000, factor: float = 3.0) -> tuple[np.ndarray, np.ndarray]:
    """Labels drawn from true probabilities; the model's logit is `factor` times the true one."""
    rng = np.random.default_rng(seed)
    true_logit = rng.normal(0, 1.5, n)
    y = (rng.uniform(size=n) < 1 / (1 + np.exp(-true_logit))).astype(float)
    return 1 / (1 + np.exp(-factor * true_logit)), y


def test_the_fitted_temperature_undoes_the_overconfidence() -> None:
    p, y = overconfident(1)
    assert abs(fit_temperature(p, y) - 3.0) < 0.3


def test_calibration_lowers_the_error_on_held_out_data_and_keeps_decisions() -> None:
    validation, test = overconfident(2), overconfident(3)
    calibration = calibrate(validation, test)
    assert calibration.after["test"].ece < 0.03 < calibration.before["test"].ece
    assert calibration.after["test"].brier < calibration.before["test"].brier
    assert calibration.after["test"].nll < calibration.before["test"].nll
    p = test[0]
    assert np.array_equal(scale(p, calibration.temperature) >= 0.5, p >= 0.5)


def test_ece_of_a_calibrated_predictor_is_small_and_of_a_constant_one_is_its_bias() -> None:
    rng = np.random.default_rng(4)
    p = rng.uniform(size=20_000)
    assert ece(p, (rng.uniform(size=p.size) < p).astype(float)) < 0.02
    assert abs(ece(np.full(1000, 0.9), np.r_[np.ones(500), np.zeros(500)]) - 0.4) < 1e-9


def test_a_perfectly_separated_validation_set_identifies_no_temperature() -> None:
    """Sharper is always better on it: the fit has no finite optimum, and T stays 1."""
    p = np.r_[np.full(20, 0.05), np.full(20, 0.97)]
    y = np.r_[np.zeros(20), np.ones(20)]
    assert fit_temperature(p, y) is None
    calibration = calibrate((p, y), overconfident(5))
    assert (calibration.temperature, calibration.identified) == (1.0, False)
    assert calibration.after == calibration.before
    assert calibration.describe().startswith("not calibrated: no temperature is identifiable")
