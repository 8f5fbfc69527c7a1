"""UAR / WA / confusion (numpy only)."""
from __future__ import annotations

import numpy as np

from ml import params


def confusion(y_true, y_pred, n=params.NUM_CLASSES) -> np.ndarray:
    cm = np.zeros((n, n), dtype=np.int64)
    np.add.at(cm, (np.asarray(y_true), np.asarray(y_pred)), 1)
    return cm


def summary(y_true, y_pred, classes=params.CLASSES) -> dict:
    cm = confusion(y_true, y_pred, len(classes))
    support = cm.sum(axis=1)
    recall = np.divide(np.diag(cm), support, out=np.zeros(len(classes)), where=support > 0)
    present = support > 0
    return {
        "uar": float(recall[present].mean()),
        "wa": float(np.trace(cm) / max(cm.sum(), 1)),
        "per_class_recall": {c: round(float(r), 4) for c, r in zip(classes, recall)},
        "confusion": cm.tolist(),
        "n": int(cm.sum()),
    }


def own_classes(y_true, y_pred) -> dict:
    """UAR and per-class recall over the classes y_true holds (a corpus's own), the argmax over
    every class."""
    s = summary(y_true, y_pred)
    held = {params.CLASSES[c] for c in np.unique(y_true)}
    return {"uar": round(s["uar"], 4),
            "per_class_recall": {c: r for c, r in s["per_class_recall"].items() if c in held}}


def subset4(y_true, probs, subset=("neutral", "happy", "sad", "angry")) -> dict:
    """Scores on the 4-class subset: clips of those classes, argmax over those classes."""
    idx = [params.CLASSES.index(c) for c in subset]
    y_true = np.asarray(y_true)
    keep = np.isin(y_true, idx)
    remap = {c: i for i, c in enumerate(idx)}
    yt = np.array([remap[v] for v in y_true[keep]])
    yp = np.asarray(probs)[keep][:, idx].argmax(axis=1)
    return summary(yt, yp, subset)


def mean_std(values) -> dict:
    v = np.asarray(values, dtype=float)
    return {"mean": round(float(v.mean()), 4), "std": round(float(v.std(ddof=0)), 4),
            "folds": [round(float(x), 4) for x in v]}
