"""Expected calibration error, temperature fitting and the uncertain flag's threshold."""
import numpy as np
import pytest

from ml import calibration, params


def test_ece_of_a_calibrated_and_an_overconfident_model():
    rng = np.random.default_rng(0)
    n = 20000
    conf = rng.uniform(0.5, 1.0, n)                    # class 0 predicted with this confidence
    probs = np.stack([conf, 1 - conf], axis=1)
    labels = (rng.random(n) >= conf).astype(int)       # and right as often as it says
    assert calibration.reliability(probs, labels)["ece"] < 0.02
    sure = np.stack([np.full(n, 0.99), np.full(n, 0.01)], axis=1)
    coin = (rng.random(n) < 0.5).astype(int)
    bad = calibration.reliability(sure, coin)
    assert bad["ece"] == pytest.approx(0.49, abs=0.02)
    assert sum(b["n"] for b in bad["bins"]) == n


def test_temperature_recovers_the_scale_of_overconfident_logits():
    rng = np.random.default_rng(1)
    true_logits = rng.normal(0, 1.5, size=(5000, 4))
    p = calibration.softmax(true_logits)
    labels = np.array([rng.choice(4, p=row) for row in p])
    t = calibration.fit_temperature(true_logits * 3.0, labels)     # 3x too sharp
    assert t == pytest.approx(3.0, rel=0.15)
    with_untrained = np.concatenate([true_logits, np.full((5000, 1), -np.inf)], axis=1)
    assert calibration.fit_temperature(with_untrained * 3.0, labels) == pytest.approx(t)


def test_uncertain_threshold_is_a_probability_above_chance():
    assert 1.0 / params.NUM_CLASSES < params.UNCERTAIN_BELOW < 1.0


def test_temperature_weighs_each_group_the_same():
    """Fitted over groups, a small group counts as much as a large one: a large well-calibrated
    group and a small overconfident one give a temperature between theirs, not the large one's."""
    rng = np.random.default_rng(2)

    def group(n, sharpness):
        true_logits = rng.normal(0, 1.5, size=(n, 4))
        p = calibration.softmax(true_logits)
        return true_logits * sharpness, np.array([rng.choice(4, p=row) for row in p])

    big, small = group(8000, 1.0), group(1000, 3.0)
    logits, labels = (np.concatenate([big[k], small[k]]) for k in (0, 1))
    groups = np.array(["big"] * 8000 + ["small"] * 1000)
    pooled = calibration.fit_temperature(logits, labels)
    equal = calibration.fit_temperature(logits, labels, groups)
    assert pooled < 1.4 < equal < 2.6
    assert calibration.fit_temperature(*big, np.zeros(8000)) == calibration.fit_temperature(*big)
