"""The shipped model on the held-out actors 21-24 (never used in training or tuning)."""
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
