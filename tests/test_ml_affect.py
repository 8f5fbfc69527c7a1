"""ml.affect (valence/arousal mapping), ml.params, ml.data folds and ml.metrics."""
import subprocess
import sys

import numpy as np
import pytest

from ml import affect, data, metrics, params


def test_class_order_is_the_contract():
    assert params.CLASSES == ("neutral", "calm", "happy", "sad", "angry", "fearful",
                              "disgust", "surprised")


def one_hot(name):
    return [1.0 if c == name else 0.0 for c in params.CLASSES]


def test_circumplex_quadrants():
    assert affect.describe(one_hot("neutral")) == {"valence": 0.0, "arousal": 0.0, "intensity": 0.0}
    v, a = affect.valence_arousal(one_hot("happy"))
    assert v > 0.9
    v, a = affect.valence_arousal(one_hot("angry"))
    assert v < 0 and a > 0.9
    v, a = affect.valence_arousal(one_hot("sad"))
    assert v < 0 and a < 0
    v, a = affect.valence_arousal(one_hot("calm"))
    assert v > 0 and a < 0
    assert affect.intensity(one_hot("fearful")) == pytest.approx(1.0)


def test_mixture_stays_in_range_and_accepts_dict():
    rng = np.random.default_rng(0)
    for _ in range(200):
        p = rng.dirichlet(np.ones(params.NUM_CLASSES) * 0.3)
        d = affect.describe(dict(zip(params.CLASSES, p)))
        assert -1 <= d["valence"] <= 1 and -1 <= d["arousal"] <= 1
        assert 0 <= d["intensity"] <= 1
    # opposite emotions cancel out: low intensity
    p = {c: 0.0 for c in params.CLASSES}
    p["happy"] = p["sad"] = 0.5
    assert affect.intensity(p) < 0.5


@pytest.mark.parametrize("bad", [[0.5] * 7, [np.nan] + [0.1] * 7, [-1] + [0.3] * 7, [0] * 8])
def test_affect_rejects_bad_probabilities(bad):
    with pytest.raises(ValueError):
        affect.describe(bad)


def test_web_modules_are_light():
    code = ("import sys, ml.affect, ml.params; "
            "bad = [m for m in ('tensorflow', 'keras', 'scipy', 'sklearn') if m in sys.modules]; "
            "assert not bad, bad; print('ok')")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr[-2000:]


def test_folds_are_actor_grouped():
    seen = []
    for k in range(data.NUM_FOLDS):
        test = data.fold_test_actors(k)
        assert test == tuple(range(4 * k + 1, 4 * k + 5))
        assert sum(a % 2 for a in test) == 2          # two male (odd), two female (even)
        seen.extend(test)
    assert sorted(seen) == list(range(1, 25))
    with pytest.raises(ValueError):
        data.fold_test_actors(6)


@pytest.mark.skipif(not all(data.corpus_available(corpus=c) for c in data.CORPORA),
                    reason="corpora not found under ../shared/data (CI has them)")
def test_run_plans_keep_speakers_apart():
    """Every protocol unit: test, validation and training speakers are disjoint, and a
    leave-one-corpus-out run trains on no speaker of the left-out corpus."""
    from ml.train import plan
    clips = data.load_corpora()
    units = [plan(clips)] + [plan(clips, fold=k) for k in range(data.NUM_FOLDS)] + \
        [plan(clips, loco=c) for c in data.CORPORA]
    for p in units:
        assert not (p["test"] & p["validation"]) and not (p["test"] & p["train"])
        assert not (p["validation"] & p["train"])
        assert p["test"] | p["validation"] | p["train"] == {c.speaker for c in clips}
    assert units[0]["test"] == data.ravdess_speakers(data.TEST_ACTORS)
    for c, p in zip(data.CORPORA, units[-3:]):
        assert p["test"] == {x.speaker for x in clips if x.corpus == c}


def test_metrics_uar_vs_wa():
    y = [0, 0, 0, 0, 1]
    p = [0, 0, 0, 0, 0]
    s = metrics.summary(y, p, classes=("a", "b"))
    assert s["wa"] == pytest.approx(0.8)
    assert s["uar"] == pytest.approx(0.5)
    assert s["confusion"] == [[4, 0], [1, 0]]


@pytest.mark.skipif(not data.corpus_available(), reason="RAVDESS corpus not found at ../shared/data/ravdess")
def test_metadata_parses():
    clips = data.load_metadata()
    assert len(clips) == 1440
    assert {c.actor for c in clips} == set(range(1, 25))
    counts = np.bincount([c.label for c in clips])
    assert counts.tolist() == [96] + [192] * 7


def test_scores_are_over_the_corpus_own_classes():
    """A corpus without calm is not scored on calm: UAR over the classes its clips hold."""
    neutral, calm, sad = (params.CLASSES.index(c) for c in ("neutral", "calm", "sad"))
    scores = metrics.own_classes([neutral, neutral, sad, sad], [neutral, calm, sad, sad])
    assert scores == {"uar": 0.75, "per_class_recall": {"neutral": 0.5, "sad": 1.0}}
