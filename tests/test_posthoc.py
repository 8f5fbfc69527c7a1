"""ml/posthoc.py's corrections on synthetic predictions."""
import numpy as np

from ml import calibration, params
from ml.posthoc import NEUTRAL, fit_neutral_bias, fit_vector_scaling, mixture, with_neutral_bias

K = params.NUM_CLASSES


def test_mixture_averages_the_renormalised_label_sets():
    p = np.full((1, K), 1.0 / K)
    full, half = np.ones(K), np.r_[np.ones(K // 2), np.zeros(K - K // 2)]
    out = mixture(p, [full, half])
    assert np.allclose(out.sum(axis=1), 1.0)
    # a class in both sets keeps (1/K + 2/K) / 2; one in the full set only 1/K / 2
    assert np.isclose(out[0, 0], (1 / K + 2 / K) / 2)
    assert np.isclose(out[0, -1], 1 / K / 2)


def test_vector_scaling_finds_a_bias_the_labels_carry():
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(4000, K))
    bias = np.zeros(K)
    bias[2] = 1.5
    labels = np.array([rng.choice(K, p=q) for q in calibration.softmax(logits + bias)])
    own = np.ones(K)
    t, fitted = fit_vector_scaling([(logits, labels, own)])
    assert 0.8 < t < 1.25
    centred = fitted - fitted.mean()
    assert centred.argmax() == 2 and centred[2] > 1.0


def test_a_class_no_fitting_corpus_has_keeps_no_bias():
    rng = np.random.default_rng(1)
    logits = rng.normal(size=(500, K))
    own = np.ones(K)
    own[1] = 0
    labels = rng.choice(np.flatnonzero(own), size=500)
    assert fit_vector_scaling([(logits, labels, own)])[1][1] == 0


def test_neutral_bias_gives_back_the_neutral_clips_a_model_pushes_away():
    rng = np.random.default_rng(2)
    labels = rng.choice(K, size=3000)
    logits = rng.normal(size=(3000, K)) + 2.5 * np.eye(K)[labels]
    logits[:, NEUTRAL] -= 1.0              # new voices' neutral heard as something else
    logp = np.log(calibration.softmax(logits))
    bias = fit_neutral_bias([(logp, labels)])
    assert 0.6 <= bias <= 1.4
    recall = [(with_neutral_bias(logp, b).argmax(axis=1)[labels == NEUTRAL] == NEUTRAL).mean() for b in (0.0, bias)]
    assert recall[1] > recall[0] + 0.15
    assert fit_neutral_bias([(np.log(calibration.softmax(logits + np.eye(K)[NEUTRAL])), labels)]) <= 0.4
