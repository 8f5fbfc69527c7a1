"""Calibration: expected calibration error and reliability diagrams (numpy, matplotlib)."""
from __future__ import annotations

from pathlib import Path

import numpy as np

BINS = 15


def softmax(logits: np.ndarray, temperature: float = 1.0) -> np.ndarray:
    z = np.asarray(logits, np.float64) / temperature
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def fit_temperature(logits: np.ndarray, labels: np.ndarray, groups: np.ndarray | None = None) -> float:
    """The temperature that minimises the negative log-likelihood (a 1-D grid search).
    Logits of classes a model never learned may be -inf. With ``groups`` (a group id per
    example), each group weighs the same, whatever its size."""
    logits = np.asarray(logits, np.float64)
    _, which, sizes = np.unique(np.zeros(len(logits)) if groups is None else groups,
                                return_inverse=True, return_counts=True)
    weights = 1.0 / (sizes[which] * len(sizes))
    best, best_nll = 1.0, np.inf
    for t in np.exp(np.linspace(np.log(0.3), np.log(8.0), 240)):
        z = logits / t
        z = z - z.max(axis=1, keepdims=True)
        nll = -((z[np.arange(len(z)), labels] - np.log(np.exp(z).sum(axis=1))) * weights).sum()
        if nll < best_nll:
            best, best_nll = float(t), nll
    return round(best, 4)


def cross_corpus_temperature(runs_dir: Path, corpora, trained_masks) -> float | None:
    """One temperature fitted on the test predictions (cold and adapted) of the
    leave-one-corpus-out runs of ``corpora``: calibrated for corpora a model never heard.
    Each corpus weighs the same: pooled, the largest (nEMO, four times RAVDESS's clips) would
    set the temperature, and a new user's voice is no likelier to resemble it than the others.
    ``trained_masks[c]``: the classes run loco_c was trained on.  None when a run is missing."""
    logits, labels, groups = [], [], []
    for c in corpora:
        f = runs_dir / f"loco_{c}.npz"
        if not f.exists():
            return None
        z = np.load(f)
        keep = trained_masks[c][z["labels"]] > 0
        for mode in ("cold", "adapted"):
            logits.append(np.where(trained_masks[c] > 0, z[mode][keep], -np.inf))
            labels.append(z["labels"][keep])
            groups.append(np.full(int(keep.sum()), c))
    return fit_temperature(np.concatenate(logits), np.concatenate(labels), np.concatenate(groups))


def reliability(probs: np.ndarray, labels: np.ndarray, bins: int = BINS) -> dict:
    """Top-probability confidence against accuracy in equal-width bins, and the ECE
    (the bin-size-weighted mean gap between them)."""
    probs, labels = np.asarray(probs), np.asarray(labels)
    conf = probs.max(axis=1)
    correct = probs.argmax(axis=1) == labels
    edges = np.linspace(0.0, 1.0, bins + 1)
    which = np.clip(np.digitize(conf, edges[1:-1], right=True), 0, bins - 1)
    rows, ece = [], 0.0
    for b in range(bins):
        sel = which == b
        if not sel.any():
            continue
        acc, c = float(correct[sel].mean()), float(conf[sel].mean())
        ece += sel.mean() * abs(acc - c)
        rows.append({"lo": round(float(edges[b]), 4), "hi": round(float(edges[b + 1]), 4),
                     "n": int(sel.sum()), "confidence": round(c, 4), "accuracy": round(acc, 4)})
    return {"ece": round(float(ece), 4), "bins": rows, "n": int(len(labels))}


def plot_reliability(curves: dict[str, dict], title: str, path: Path) -> str | None:
    """One line per curve name ({"bins": [...]} from reliability())."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    fig, ax = plt.subplots(figsize=(5.2, 5.0), dpi=110)
    ax.plot([0, 1], [0, 1], ls="--", color="grey", lw=1, label="perfect calibration")
    for name, r in curves.items():
        xs = [b["confidence"] for b in r["bins"]]
        ys = [b["accuracy"] for b in r["bins"]]
        ax.plot(xs, ys, marker="o", ms=3, label=f"{name} (ECE {r['ece']:.3f})")
    ax.set_xlabel("confidence (top probability)")
    ax.set_ylabel("accuracy")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=7, loc="upper left")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return str(path)
