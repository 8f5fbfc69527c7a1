"""Which cues carry across corpora?  A linear probe on clip functionals, leave one corpus out.

Functionals of each clip's cached frame features (ml/cache.py, original version): the
log-mel spectrum (per-band mean, spread and movement over speech frames), pitch (log F0
over voiced frames: level, spread, percentiles, range, movement; voicing and periodicity)
and loudness (spread, movement, speech share, range).  Each set is standardised per
speaker over all of that speaker's clips (offline: an upper bound of what online
adaptation can learn) or over the training data, then a class-balanced logistic regression
trained on two corpora is scored on the third (UAR over its classes; argmax over every
class learned).  Minutes on a CPU; it guided the model's prosody branch (ml/MODEL_CARD.md).

    python -m ml.probe [--data PATH]     # -> ml/reports/probe_loco.json
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from ml import adapt, cache, data, metrics, params

REPORT = Path(__file__).resolve().parent / "reports" / "probe_loco.json"
SETS = {"spectrum": ("mel",), "spectrum + pitch + loudness": ("mel", "pitch", "loudness"),
        "pitch + loudness": ("pitch", "loudness")}


def functionals(f: np.ndarray) -> dict[str, np.ndarray]:
    f = f.astype(np.float32)
    speech = adapt.active_frames(f)
    voiced = adapt.voiced_frames(f)
    mel = f[speech, :params.MEL_BANDS]
    f0 = f[voiced if voiced.sum() >= 3 else speech, params.LOG_F0]
    per = f[speech, params.PERIODICITY]
    energy = f[:, :params.MEL_BANDS].mean(axis=1)[speech]
    move = np.abs(np.diff(mel, axis=0)).mean(axis=0) if len(mel) > 1 else np.zeros(params.MEL_BANDS)
    p10, p50, p90 = np.percentile(f0, [10, 50, 90])
    e10, e90 = np.percentile(energy, [10, 90])
    return {"mel": np.concatenate([mel.mean(axis=0), mel.std(axis=0), move]),
            "pitch": np.array([f0.mean(), f0.std(), p10, p50, p90, p90 - p10,
                               np.abs(np.diff(f0)).mean() if len(f0) > 1 else 0.0,
                               voiced.sum() / max(speech.sum(), 1), per.mean(), per.std()]),
            "loudness": np.array([energy.std(), np.abs(np.diff(energy)).mean() if len(energy) > 1 else 0.0,
                                  speech.mean(), e90 - e10])}


def standardise(x, groups):
    x = x.copy()
    for g in np.unique(groups):
        m = groups == g
        x[m] = (x[m] - x[m].mean(axis=0)) / (x[m].std(axis=0) + 1e-6)
    return x


def main(argv=None):
    from sklearn.linear_model import LogisticRegression

    from ml.train import commit
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    data.add_data_argument(ap)
    a = ap.parse_args(argv)
    clips = data.load_corpora(a.data)
    feats = cache.load(clips)["orig"]
    per_clip = [functionals(f) for f in feats]
    y = np.array([c.label for c in clips])
    corpus = np.array([c.corpus for c in clips])
    speaker = np.array([c.speaker for c in clips])
    out = {"commit": commit(), "cache": cache.cache_key(clips),
           "results": []}
    for norm in ("per speaker", "global"):
        for name, keys in SETS.items():
            x = np.nan_to_num(np.stack([np.concatenate([p[k] for k in keys]) for p in per_clip]))
            x = standardise(x, speaker if norm == "per speaker" else np.zeros(len(x)))
            row = {"normalisation": norm, "features": name}
            for test in data.CORPORA:
                tr, te = corpus != test, corpus == test
                clf = LogisticRegression(C=0.05, max_iter=3000, class_weight="balanced").fit(x[tr], y[tr])
                s = metrics.summary(y[te], clf.predict(x[te]))
                row[test] = {"uar": round(s["uar"], 3), "neutral_recall": round(
                    float(np.mean(clf.predict(x[te & (y == 0)]) == 0)), 3)}
            out["results"].append(row)
            print(norm, name, {c: row[c]["uar"] for c in data.CORPORA}, flush=True)
    REPORT.write_text(json.dumps(out, indent=1) + "\n")


if __name__ == "__main__":
    main()
