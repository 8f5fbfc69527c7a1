"""Classic baseline: eGeMAPSv02 functionals (opensmile) + standardisation + RBF SVM.

Same actor-grouped folds as the model. Runs without TensorFlow; note that with
TF 2.21 and opensmile 2.6, importing tensorflow *before* opensmile crashes on the
first extraction, so opensmile is imported first here and ml.evaluate runs this
module in its own process.

    python -m ml.baseline --cv            # 6-fold CV  -> ml/reports/baseline_cv.json
    python -m ml.baseline --split test    # actors 1-20 -> 21-24 -> ml/reports/baseline_test.json
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import opensmile  # noqa: I001  (must precede any tensorflow import in this process)

from ml import data, metrics, params

CACHE = Path(__file__).resolve().parent / ".cache"
REPORTS = Path(__file__).resolve().parent / "reports"
C_GRID = (0.3, 1.0, 3.0, 10.0, 30.0)


def _smile():
    return opensmile.Smile(feature_set=opensmile.FeatureSet.eGeMAPSv02,
                           feature_level=opensmile.FeatureLevel.Functionals)


def feature_names() -> list[str]:
    """The 88 eGeMAPSv02 functionals, in the order of extract()'s columns."""
    return list(_smile().feature_names)


def extract(clips, cache=True) -> np.ndarray:
    CACHE.mkdir(exist_ok=True)
    cache_file = CACHE / f"egemaps_{len(clips)}.npy"
    if cache and cache_file.exists():
        return np.load(cache_file)
    smile = _smile()
    try:
        from tqdm import tqdm
        it = tqdm(clips, desc="eGeMAPS", file=sys.stderr)
    except ImportError:
        it = clips
    feats = [smile.process_signal(w, params.SAMPLE_RATE).to_numpy()[0]
             for w in (data.load_waveform(c) for c in it)]
    X = np.asarray(feats, dtype=np.float64)
    if cache:
        np.save(cache_file, X)
    return X


def fit_predict(X_tr, y_tr, groups_tr, X_te):
    """Scaler + RBF SVM; C chosen by inner actor-grouped CV on the training actors only."""
    from sklearn.model_selection import GridSearchCV, GroupKFold
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from sklearn.svm import SVC
    pipe = make_pipeline(StandardScaler(), SVC(kernel="rbf", gamma="scale",
                                               class_weight="balanced"))
    search = GridSearchCV(pipe, {"svc__C": C_GRID}, cv=GroupKFold(n_splits=5),
                          scoring="balanced_accuracy", n_jobs=1)
    search.fit(X_tr, y_tr, groups=groups_tr)
    scores = search.decision_function(X_te)
    return scores.argmax(axis=1), scores, search.best_params_["svc__C"]


def run(mode: str, data_path=None) -> dict:
    clips = data.load_metadata(data_path)
    X = extract(clips)
    y = np.array([c.label for c in clips])
    actors = np.array([c.actor for c in clips])
    t0 = time.time()
    if mode == "cv":
        folds = []
        for k in range(data.NUM_FOLDS):
            te = np.isin(actors, data.fold_test_actors(k))
            pred, scores, C = fit_predict(X[~te], y[~te], actors[~te], X[te])
            s = metrics.summary(y[te], pred)
            s["subset4"] = metrics.subset4(y[te], scores)
            s.update(fold=k, test_actors=list(data.fold_test_actors(k)), C=C)
            folds.append(s)
            print(f"fold {k}: UAR {s['uar']:.3f} WA {s['wa']:.3f} (C={C})", file=sys.stderr)
        cm = np.sum([f["confusion"] for f in folds], axis=0)
        report = {
            "model": "eGeMAPSv02 functionals + StandardScaler + RBF SVM (opensmile "
                     f"{opensmile.__version__})",
            "protocol": "6-fold actor-grouped CV, fold k tests actors 4k+1..4k+4",
            "uar": metrics.mean_std([f["uar"] for f in folds]),
            "wa": metrics.mean_std([f["wa"] for f in folds]),
            "subset4_uar": metrics.mean_std([f["subset4"]["uar"] for f in folds]),
            "confusion_pooled": cm.tolist(),
            "folds": folds,
        }
        out = REPORTS / "baseline_cv.json"
    else:
        te = np.isin(actors, data.TEST_ACTORS)
        pred, scores, C = fit_predict(X[~te], y[~te], actors[~te], X[te])
        report = metrics.summary(y[te], pred)
        report["subset4"] = metrics.subset4(y[te], scores)
        report.update(model="eGeMAPSv02 + StandardScaler + RBF SVM", C=C,
                      train_actors="1-20", test_actors="21-24")
        out = REPORTS / "baseline_test.json"
    report["classes"] = list(params.CLASSES)
    report["seconds"] = round(time.time() - t0, 1)
    REPORTS.mkdir(exist_ok=True)
    out.write_text(json.dumps(report, indent=1) + "\n")
    return report


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    g = ap.add_mutually_exclusive_group(required=True)
    g.add_argument("--cv", action="store_true")
    g.add_argument("--split", choices=["test"])
    data.add_data_argument(ap)
    a = ap.parse_args(argv)
    r = run("cv" if a.cv else "test", a.data)
    short = {k: r[k] for k in ("uar", "wa") if k in r}
    if "per_class_recall" in r:
        short.update(per_class_recall=r["per_class_recall"], confusion=r["confusion"])
    print(json.dumps(short))


if __name__ == "__main__":
    main()
