"""ml/posthoc.py's corrections on synthetic predictions."""
import numpy as np

from ml import calibration, params
from ml.posthoc import fit_vector_scaling, mixture

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
