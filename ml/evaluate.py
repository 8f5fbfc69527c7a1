"""Evaluate the emotion model, speaker-independently.

    python -m ml.evaluate --split test   # the shipped .tflite on actors 21-24 (through
                                         # ml.inference, i.e. what serving runs); prints
                                         # {"uar", "wa", "per_class_recall", "confusion"}
    python -m ml.evaluate --cv [--jobs 2] [--retrain]
        # 6-fold actor-grouped CV (fold k tests actors 4k+1..4k+4): trains the fold models
        # (python -m ml.train --fold k, reused from ml/runs/ when trained with the current
        # settings), and runs the eGeMAPS + SVM baseline (ml.baseline, in its own process)
        # on the same folds; prints both side by side.

Reports: ml/reports/test.json, ml/reports/cv.json (+ baseline_*.json), and the
confusion-matrix images docs/model/confusion_test.png, docs/model/confusion_cv.png.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from ml import data, metrics, params

ML_DIR = Path(__file__).resolve().parent
REPORTS = ML_DIR / "reports"
RUNS = ML_DIR / "runs"
DOCS = ML_DIR.parent / "docs" / "model"


def plot_confusion(cm, title, path):
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    cm = np.asarray(cm, dtype=float)
    norm = cm / np.maximum(cm.sum(axis=1, keepdims=True), 1)
    fig, ax = plt.subplots(figsize=(6.4, 5.6), dpi=110)
    im = ax.imshow(norm, cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(len(params.CLASSES)), params.CLASSES, rotation=45, ha="right")
    ax.set_yticks(range(len(params.CLASSES)), params.CLASSES)
    for i in range(len(cm)):
        for j in range(len(cm)):
            ax.text(j, i, f"{norm[i, j]:.2f}\n({int(cm[i, j])})", ha="center", va="center",
                    fontsize=6.5, color="white" if norm[i, j] > 0.5 else "black")
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title, fontsize=9)
    fig.colorbar(im, ax=ax, fraction=0.046)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return str(path.relative_to(ML_DIR.parent))


def evaluate_test(data_path=None, model_path=None, plot=True, save=True) -> dict:
    from ml.inference import EmotionRecognizer
    clips = [c for c in data.load_metadata(data_path) if c.actor in data.TEST_ACTORS]
    rec = EmotionRecognizer.load(model_path)
    probs, silent = [], 0
    t0 = time.time()
    for c in clips:
        x, sr = data.read_audio(c.path)
        r = rec.predict(x, sr)
        if r["silence"]:       # counted as wrong: uniform probabilities
            silent += 1
            probs.append(np.full(params.NUM_CLASSES, 1.0 / params.NUM_CLASSES))
        else:
            probs.append([r["probabilities"][k] for k in params.CLASSES])
    probs = np.asarray(probs)
    y = np.array([c.label for c in clips])
    s = metrics.summary(y, probs.argmax(1))
    report = {"uar": round(s["uar"], 4), "wa": round(s["wa"], 4),
              "per_class_recall": s["per_class_recall"], "confusion": s["confusion"],
              "subset4": metrics.subset4(y, probs), "n": s["n"], "labelled_silence": silent,
              "classes": list(params.CLASSES), "model": str(rec.model_path.name),
              "runtime": rec.backend, "train_actors": "1-20", "test_actors": "21-24",
              "seconds": round(time.time() - t0, 1)}
    if plot:
        report["image"] = plot_confusion(
            s["confusion"], f"shipped model, actors 21-24 (UAR {s['uar']:.3f})",
            DOCS / "confusion_test.png")
    if save:
        REPORTS.mkdir(exist_ok=True)
        (REPORTS / "test.json").write_text(json.dumps(report, indent=1) + "\n")
    return report


def _fold_done(k, cfg) -> bool:
    f = RUNS / f"fold{k}.json"
    if not (f.exists() and (RUNS / f"fold{k}_pred.npz").exists()):
        return False
    return json.loads(f.read_text()).get("config") == json.loads(json.dumps(cfg))


def evaluate_cv(data_path=None, jobs=1, retrain=False, baseline=True, threads=1) -> dict:
    from ml.train import DEFAULTS
    clips = data.load_metadata(data_path)
    todo = [k for k in range(data.NUM_FOLDS) if retrain or not _fold_done(k, DEFAULTS)]
    base_cmd = [sys.executable, "-m", "ml.train", "--no-progress", "--threads", str(threads)]
    if data_path:
        base_cmd += ["--data", str(data_path)]
    if todo:
        # build the feature cache once, then train folds in parallel subprocesses
        subprocess.run([sys.executable, "-c", "from ml import data, train; "
                        f"train.build_cache(data.load_metadata({str(data_path)!r} if {bool(data_path)} else None))"],
                       check=True)
    running = []
    from tqdm import tqdm
    bar = tqdm(total=len(todo), desc="CV folds", file=sys.stderr)
    pending = list(todo)
    while pending or running:
        while pending and len(running) < jobs:
            k = pending.pop(0)
            running.append((k, subprocess.Popen(base_cmd + ["--fold", str(k)],
                                                stdout=subprocess.DEVNULL)))
        time.sleep(2)
        for k, p in list(running):
            if p.poll() is not None:
                if p.returncode:
                    raise SystemExit(f"training fold {k} failed ({p.returncode})")
                running.remove((k, p))
                bar.update(1)
    bar.close()
    if baseline:
        subprocess.run([sys.executable, "-m", "ml.baseline", "--cv"] +
                       (["--data", str(data_path)] if data_path else []), check=True,
                       stdout=subprocess.DEVNULL)
    folds, all_y, all_p = [], [], []
    for k in range(data.NUM_FOLDS):
        z = np.load(RUNS / f"fold{k}_pred.npz")
        info = json.loads((RUNS / f"fold{k}.json").read_text())
        s = metrics.summary(z["labels"], z["probs"].argmax(1))
        s["subset4"] = metrics.subset4(z["labels"], z["probs"])
        s.update(fold=k, test_actors=info["test_actors"], val_actors=info["val_actors"],
                 train_seconds=info["train_seconds"],
                 final_val_uar=info["history"][-1].get("val_uar"))
        folds.append(s)
        all_y.append(z["labels"])
        all_p.append(z["probs"])
    cm = np.sum([f["confusion"] for f in folds], axis=0)
    report = {
        "protocol": "6-fold actor-grouped CV; fold k tests actors 4k+1..4k+4; " + (
            "each fold model trains on its 20 other actors (the recipe was chosen with validation "
            "actors from within the training actors, data.fold_validation_actors)" if DEFAULTS["refit"] else
            "validation actors from within the training actors (data.fold_validation_actors)"),
        "model": {"uar": metrics.mean_std([f["uar"] for f in folds]),
                  "wa": metrics.mean_std([f["wa"] for f in folds]),
                  "subset4_uar": metrics.mean_std([f["subset4"]["uar"] for f in folds]),
                  "confusion_pooled": cm.tolist(),
                  "train_seconds_total": round(sum(f["train_seconds"] for f in folds), 1),
                  "folds": folds},
        "classes": list(params.CLASSES),
    }
    report["model"]["config"] = DEFAULTS
    bfile = REPORTS / "baseline_cv.json"
    if bfile.exists():
        b = json.loads(bfile.read_text())
        report["baseline"] = {k: b[k] for k in ("model", "uar", "wa", "subset4_uar")}
        report["uar_gain_points"] = round(100 * (report["model"]["uar"]["mean"] - b["uar"]["mean"]), 1)
    report["image"] = plot_confusion(cm, "6-fold CV, pooled over folds "
                                     f"(UAR {report['model']['uar']['mean']:.3f})",
                                     DOCS / "confusion_cv.png")
    REPORTS.mkdir(exist_ok=True)
    (REPORTS / "cv.json").write_text(json.dumps(report, indent=1) + "\n")
    return report


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    g = ap.add_mutually_exclusive_group(required=True)
    g.add_argument("--cv", action="store_true", help="6-fold actor-grouped CV, model and baseline")
    g.add_argument("--split", choices=["test"], help="the shipped model on actors 21-24")
    ap.add_argument("--data", default=None, help="RAVDESS folder (default ../shared/data/ravdess)")
    ap.add_argument("--model", default=None, help="--split: a .tflite to evaluate (default: shipped)")
    ap.add_argument("--jobs", type=int, default=1, help="--cv: folds trained in parallel")
    ap.add_argument("--threads", type=int, default=1, help="--cv: CPU threads per fold")
    ap.add_argument("--retrain", action="store_true", help="--cv: retrain every fold")
    ap.add_argument("--no-baseline", action="store_true", help="--cv: skip the baseline run")
    a = ap.parse_args(argv)
    if a.split:
        r = evaluate_test(a.data, a.model)
        print(json.dumps({k: r[k] for k in ("uar", "wa", "per_class_recall", "confusion")}))
        return
    r = evaluate_cv(a.data, jobs=a.jobs, retrain=a.retrain, baseline=not a.no_baseline,
                    threads=a.threads)
    m, b = r["model"], r.get("baseline")
    print(f"{'':28s} {'UAR':>15s} {'WA':>15s}", file=sys.stderr)
    print(f"{'log-mel CNN (ours)':28s} {m['uar']['mean']:.3f} ± {m['uar']['std']:.3f}   "
          f"{m['wa']['mean']:.3f} ± {m['wa']['std']:.3f}", file=sys.stderr)
    if b:
        print(f"{'eGeMAPSv02 + RBF SVM':28s} {b['uar']['mean']:.3f} ± {b['uar']['std']:.3f}   "
              f"{b['wa']['mean']:.3f} ± {b['wa']['std']:.3f}", file=sys.stderr)
    print(json.dumps({"model": {"uar": m["uar"], "wa": m["wa"]},
                      "baseline": {"uar": b["uar"], "wa": b["wa"]} if b else None,
                      "uar_gain_points": r.get("uar_gain_points")}))


if __name__ == "__main__":
    main()
