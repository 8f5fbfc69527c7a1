"""The shipped model on the held-out actors 21-24 (never used in training or tuning)."""
import numpy as np
import pytest

from ml import data


def test_shipped_model_test_split_uar():
    if not data.corpus_available():
        pytest.skip("RAVDESS corpus not found at ../shared/data/ravdess: "
                    "accuracy test skipped (CI has the corpus)")
    from ml.evaluate import evaluate_test
    r = evaluate_test(plot=False, save=False)
    assert r["n"] == 240
    assert r["uar"] >= 0.65, f"test-split UAR {r['uar']:.3f} < 0.65"


@pytest.mark.parametrize("settings", [{}, {"corpus_adversary": 0.5, "affect_aux": 0.5, "class_boost": {}},
                                      {"epochs": 2, "average_last": 2, "reverb_prob": 1.0}])
def test_loco_pipeline_smoke_on_a_small_subset(tmp_path, monkeypatch, settings):
    """Leave-one-corpus-out end to end on a few speakers: cache, masked-loss training with
    sampled speaker histories and neutral weighed twice (or with the corpus-adversarial and affect
    heads and no class weighed more, or with reverberation and weights averaged over epochs),
    calibration, cold and online-adapted scoring of the
    left-out corpus.  A smoke check of the protocol's code, not of accuracy."""
    from ml import cache, train
    missing = [c for c in data.CORPORA if not data.corpus_available(corpus=c)]
    if missing:
        pytest.skip(f"corpora {missing} not found under ../shared/data: LOCO smoke check skipped "
                    "(CI has the corpora)")
    monkeypatch.setattr(cache, "CACHE", tmp_path / "cache")
    monkeypatch.setattr(train, "RUNS", tmp_path / "runs")
    monkeypatch.setattr(train, "RUN_REPORTS", tmp_path / "reports")
    keep = {"ravdess": ("ravdess_01", "ravdess_02", "ravdess_19"), "nemo": ("nemo_EB0", "nemo_TP0"),
            "ased": ("ased_01", "ased_05")}
    clips = [c for c in data.load_corpora() if c.speaker in keep[c.corpus]]
    clips = [c for i, c in enumerate(clips) if i % 12 == 0]          # about 10 clips per speaker
    feats = cache.load(clips, jobs=1, progress=False)
    cfg = dict(train.DEFAULTS, epochs=1) | settings
    info = train.run(clips, feats, train.clip_stats(feats), cfg, loco="nemo", progress=False)
    assert info["test_speakers"] == ["nemo_EB0", "nemo_TP0"]
    assert "nemo_TP0" not in info["validation_speakers"]
    assert 0.3 <= info["temperature"] <= 8.0           # inside the search grid
    z = np.load(tmp_path / "reports" / "loco_nemo.npz")
    assert len(z["idx"]) == sum(c.corpus == "nemo" for c in clips)
    assert np.isfinite(z["cold"]).all() and np.isfinite(z["adapted"]).all()
    assert not np.allclose(z["cold"], z["adapted"])         # adaptation changed later clips
    if settings.get("average_last"):     # the unaveraged weights scored too, and they differ
        assert np.isfinite(z["cold_unaveraged"]).all()
        assert not np.allclose(z["cold"], z["cold_unaveraged"])
