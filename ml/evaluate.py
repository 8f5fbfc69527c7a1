"""Evaluate the emotion model, speaker-independently, cold and adapted to each speaker.

    python -m ml.evaluate --split test
        # the shipped .tflite on RAVDESS actors 21-24 through ml.inference (what serving
        # runs): cold, adapted online (each actor's clips in a fixed shuffled order, each
        # scored with what was learned from the clips before it), and after an Opus round trip
    python -m ml.evaluate --loco [--fold K ...] [--jobs 2] [--retrain]
        # leave one corpus out: fold K trains on the other two corpora and tests on corpus K
        # (0 ravdess, 1 nemo, 2 ased); UAR over the test corpus's classes, cold and adapted
    python -m ml.evaluate --cv [--fold K ...] [--jobs 2] [--retrain]
        # RAVDESS 6-fold actor CV (fold K tests actors 4K+1..4K+4; nEMO and ASED always
        # in training), cold, adapted and Opus round-tripped

Each fold is one ``python -m ml.train`` run, reused from ml/reports/runs/ when it was made
with the current recipe and settings (so a protocol can span sessions: --fold K runs only
those folds, and the report covers every fold done so far).  Reports: ml/reports/test.json,
loco.json, cv.json, calibration.json; images under docs/model/.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from ml import adapt, calibration, data, metrics, params

ML_DIR = Path(__file__).resolve().parent
REPORTS = ML_DIR / "reports"
RUN_REPORTS = REPORTS / "runs"
# measured anchors on the same LOCO protocol (issue 20): UAR on the left-out corpus
ANCHORS = {
    "shipped model before this recipe (trained on RAVDESS only)": {"nemo": 0.33, "ased": 0.39},
    "eGeMAPS + RBF SVM, per-speaker z-norm": {"nemo": 0.31, "ased": 0.44},
}
TARGETS = {"loco_uar_adapted": 0.50, "loco_uar_cold": 0.40, "loco_neutral_recall": 0.50,
           "loco_ece": 0.08, "cv_uar": 0.70, "test_uar": 0.70, "opus_drop_points": 2.0}
DOCS = ML_DIR.parent / "docs" / "model"


def save_figure(fig, path) -> str:
    """Lay out and save a figure, and close it; its path from the repository's root."""
    import matplotlib.pyplot as plt
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return str(path.relative_to(ML_DIR.parent))


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
    return save_figure(fig, path)


def plot_corpus_panels(corpora: dict, title: str, path, draw):
    """A figure of UAR panels, one per corpus of `corpora` ({name: report with "clips"}), each drawn
    by draw(ax, report); saved to path. Returns its path from the repository's root (None
    without matplotlib)."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    fig, axes = plt.subplots(1, len(corpora), figsize=(4.2 * len(corpora), 3.8), dpi=110, sharey=True)
    axes = np.atleast_1d(axes)
    for ax, (corpus, report) in zip(axes, corpora.items()):
        draw(ax, report)
        ax.set_title(f"{corpus} ({report['clips']} clips)", fontsize=9)
        ax.set_ylim(0, 1)
    axes[0].set_ylabel("UAR")
    fig.suptitle(title, fontsize=9)
    return save_figure(fig, path)


def serving_scores(rec, clips, heard=None):
    """Clip probabilities from the serving model: cold, and adapted online per speaker (each
    speaker's clips in the protocol's fixed order, each scored with what the clips before it
    taught). heard(i): clip i's audio as the model hears it (default: as recorded)."""
    from ml.train import speaker_orders
    heard = heard or (lambda i: data.load_waveform(clips[i]))
    cold = np.zeros((len(clips), params.NUM_CLASSES))
    adapted = np.zeros_like(cold)
    for order in speaker_orders(clips, range(len(clips))).values():
        history = adapt.empty()
        for i in order:
            x = heard(i)
            cold[i] = rec.clip_probabilities(x, adapt.empty())[0]
            adapted[i], stats = rec.clip_probabilities(x, history)
            history = adapt.merge(history, stats)
    return cold, adapted


def evaluate_test(data_path=None, model_path=None, plot=True, save=True) -> dict:
    """The shipped .tflite on RAVDESS actors 21-24, through ml.inference."""
    from ml import codec
    from ml.inference import EmotionRecognizer
    clips = [c for c in data.load_metadata(data_path) if c.actor in data.TEST_ACTORS]
    rec = EmotionRecognizer.load(model_path)
    t0 = time.time()
    cold, adapted = serving_scores(rec, clips)
    y = np.array([c.label for c in clips])
    report = {"classes": list(params.CLASSES), "model": rec.model_path.name, "runtime": rec.backend,
              "test_actors": "21-24", "n": len(clips)}
    for mode, p in (("cold", cold), ("adapted", adapted)):
        s = metrics.summary(y, p.argmax(1))
        report[mode] = {"uar": round(s["uar"], 4), "wa": round(s["wa"], 4),
                        "per_class_recall": s["per_class_recall"], "confusion": s["confusion"],
                        "calibration": calibration.reliability(p, y)}
    report["uar"] = report["cold"]["uar"]
    o_cold, o_adapted = serving_scores(
        rec, clips, lambda i: codec.round_trip(data.load_waveform(clips[i]), "libopus", 24000))
    report["opus_24k"] = {m: round(metrics.summary(y, p.argmax(1))["uar"], 4)
                          for m, p in (("cold", o_cold), ("adapted", o_adapted))}
    report["opus_drop_points"] = {m: round(100 * (report[m]["uar"] - report["opus_24k"][m]), 1)
                                  for m in ("cold", "adapted")}
    report["seconds"] = round(time.time() - t0, 1)
    if plot:
        report["image"] = plot_confusion(
            report["adapted"]["confusion"],
            f"shipped model, RAVDESS actors 21-24, adapted (UAR {report['adapted']['uar']:.3f})",
            DOCS / "confusion_test.png")
    if save:
        REPORTS.mkdir(exist_ok=True)
        (REPORTS / "test.json").write_text(json.dumps(report, indent=1) + "\n")
    return report


def run_done(name: str, cfg: dict) -> bool:
    """Whether run `name` was made with the current recipe and settings `cfg`; a setting the
    run's report lacks (added since) counts as its default (ml/train.py DEFAULTS)."""
    from ml.train import DEFAULTS, RECIPE_VERSION
    f = RUN_REPORTS / f"{name}.json"
    if not (f.exists() and (RUN_REPORTS / f"{name}.npz").exists()):
        return False
    info = json.loads(f.read_text())
    made_with = json.loads(json.dumps({**DEFAULTS, **info.get("config", {})}))
    return info.get("recipe") == RECIPE_VERSION and made_with == json.loads(json.dumps(cfg))


def ensure_runs(args_by_name: dict[str, list[str]], data_path=None, jobs=1, threads=1, retrain=False):
    """Train the runs not done with the current recipe, ``jobs`` at a time (subprocesses)."""
    from tqdm import tqdm

    from ml.train import DEFAULTS, RUNS
    todo = [n for n in args_by_name if retrain or not run_done(n, DEFAULTS)]
    if not todo:
        return
    base = [sys.executable, "-m", "ml.train", "--no-progress", "--threads", str(threads)]
    if data_path:
        base += ["--data", str(data_path)]
    subprocess.run([sys.executable, "-m", "ml.cache"] + (["--data", str(data_path)] if data_path else []),
                   check=True)

    def epochs_logged(name):  # ml.train logs a line per epoch to the run's train.log
        log = RUNS / name / "train.log"
        return sum(1 for _ in log.open()) if log.exists() else 0

    epochs = DEFAULTS["epochs"]
    bar = tqdm(total=len(todo) * epochs, desc=f"training {len(todo)} runs", unit="epoch", file=sys.stderr)
    running, pending, finished = [], list(todo), 0
    while pending or running:
        while pending and len(running) < jobs:
            n = pending.pop(0)
            (RUNS / n / "train.log").unlink(missing_ok=True)  # an earlier run's
            running.append((n, subprocess.Popen(base + args_by_name[n], stdout=subprocess.DEVNULL)))
        time.sleep(2)
        for n, p in list(running):
            if p.poll() is not None:
                if p.returncode:
                    raise SystemExit(f"training run {n} failed ({p.returncode})")
                running.remove((n, p))
                finished += 1
        bar.update(finished * epochs + sum(min(epochs_logged(n), epochs) for n, _ in running) - bar.n)
    bar.close()


def unit(name: str, mask=None, trained=None, temperature=None) -> dict:
    """Scores of one finished run on its test clips, cold and adapted.  ``mask``: the
    test corpus's classes; ``trained``: the classes the run's training data had (a class
    no training corpus has is neither scored nor predicted: LOCO scores the shared classes)."""
    info = json.loads((RUN_REPORTS / f"{name}.json").read_text())
    z = np.load(RUN_REPORTS / f"{name}.npz")
    keep = np.ones(len(z["labels"]), bool) if trained is None else trained[z["labels"]] > 0
    y = z["labels"][keep]
    if mask is not None and trained is not None:
        mask = mask * trained
    temperature = info["temperature"] if temperature is None else temperature
    out = {"run": name, "commit": info["commit"], "recipe": info["recipe"], "temperature": temperature,
           "temperature_validation": info["temperature"], "train_seconds": info["train_seconds"],
           "n": int(len(y))}

    def probs(key):
        logits = z[key][keep]
        if trained is not None:
            logits = np.where(trained > 0, logits, -np.inf)
        return calibration.softmax(logits, temperature)

    for mode in ("cold", "adapted"):
        p = probs(mode)
        s = metrics.summary(y, p.argmax(1))
        r = {"uar": round(s["uar"], 4), "wa": round(s["wa"], 4),
             "per_class_recall": {c: v for c, v in s["per_class_recall"].items()
                                  if mask is None or mask[params.CLASSES.index(c)]},
             "confusion": s["confusion"], "calibration": calibration.reliability(p, y)}
        if mask is not None:   # argmax over the test corpus's classes only (secondary figure)
            r["uar_own_classes"] = round(metrics.summary(y, np.where(mask > 0, p, -1).argmax(1))["uar"], 4)
        out[mode] = r
        if f"opus_{mode}" in z:
            po = probs(f"opus_{mode}")
            out[mode]["opus_24k_uar"] = round(metrics.summary(y, po.argmax(1))["uar"], 4)
            out[mode]["opus_drop_points"] = round(100 * (r["uar"] - out[mode]["opus_24k_uar"]), 1)
    return out


def evaluate_loco(folds=None, data_path=None, jobs=1, threads=1, retrain=False) -> dict:
    folds = list(range(len(data.CORPORA))) if folds is None else folds
    ensure_runs({f"loco_{data.CORPORA[k]}": ["--loco", data.CORPORA[k]] for k in folds},
                data_path, jobs, threads, retrain)
    clips = data.load_corpora(data_path)
    from ml.train import DEFAULTS, trained_masks
    masks = trained_masks(clips)
    report = {"protocol": "leave one corpus out: train on two corpora, test on every speaker of the third; "
                          "UAR over the classes the test corpus shares with the training corpora, argmax "
                          "over every class the model was trained on (uar_own_classes: argmax over the test "
                          "corpus's classes only); temperature fitted on the other folds' test predictions, "
                          "never on this corpus; adapted: each test speaker's clips in a fixed shuffled "
                          "order, each scored with the statistics of the clips before it",
              "classes": list(params.CLASSES), "targets": TARGETS, "anchors": ANCHORS, "folds": {}}
    for k, corpus in enumerate(data.CORPORA):
        if not run_done(f"loco_{corpus}", DEFAULTS):
            continue
        # calibrated on the other folds' test corpora: nothing fitted on this one
        others = [c for c in data.CORPORA if c != corpus and run_done(f"loco_{c}", DEFAULTS)]
        t = calibration.cross_corpus_temperature(RUN_REPORTS, others, masks) if others else None
        r = unit(f"loco_{corpus}", data.class_mask(clips, corpus), masks[corpus], t)
        r["temperature_source"] = f"LOCO test predictions of {', '.join(others)}" if others else \
            "validation speakers"
        report["folds"][corpus] = r
        r["image"] = plot_confusion(r["adapted"]["confusion"],
                                    f"LOCO: {corpus} left out, adapted (UAR {r['adapted']['uar']:.3f})",
                                    DOCS / f"confusion_loco_{corpus}.png")
    report["missing"] = [c for c in data.CORPORA if c not in report["folds"]]
    fs = report["folds"].values()
    report["met"] = {
        "uar_adapted>=0.50": all(f["adapted"]["uar"] >= 0.50 for f in fs),
        "uar_cold>=0.40": all(f["cold"]["uar"] >= 0.40 for f in fs),
        "neutral_recall>=0.50": all(f[m]["per_class_recall"]["neutral"] >= 0.50
                                    for f in fs for m in ("cold", "adapted")),
        "ece<=0.08": all(f[m]["calibration"]["ece"] <= 0.08 for f in fs for m in ("cold", "adapted")),
    } if report["folds"] else {}
    REPORTS.mkdir(exist_ok=True)
    (REPORTS / "loco.json").write_text(json.dumps(report, indent=1) + "\n")
    _calibration_report(report)
    return report


def _calibration_report(loco: dict):
    """Reliability on the LOCO test sets, pooled and per corpus; diagram in docs/model."""
    curves, out = {}, {"bins": calibration.BINS, "per_corpus": {}}
    for corpus, f in loco["folds"].items():
        out["per_corpus"][corpus] = {m: f[m]["calibration"] for m in ("cold", "adapted")}
        out["per_corpus"][corpus]["temperature"] = f["temperature"]
        curves[f"{corpus} adapted"] = f["adapted"]["calibration"]
    if curves:
        p = calibration.plot_reliability(curves, "LOCO test sets: reliability (15 bins)",
                                         DOCS / "reliability_loco.png")
        out["image"] = p and str(Path(p).relative_to(ML_DIR.parent))
    (REPORTS / "calibration.json").write_text(json.dumps(out, indent=1) + "\n")


def evaluate_cv(folds=None, data_path=None, jobs=1, threads=1, retrain=False) -> dict:
    folds = list(range(data.NUM_FOLDS)) if folds is None else folds
    ensure_runs({f"cv_fold{k}": ["--fold", str(k)] for k in folds}, data_path, jobs, threads, retrain)
    from ml.train import DEFAULTS
    done = [k for k in range(data.NUM_FOLDS) if run_done(f"cv_fold{k}", DEFAULTS)]
    units = [unit(f"cv_fold{k}") for k in done]
    report = {"protocol": "RAVDESS 6-fold actor CV: fold k tests actors 4k+1..4k+4; nEMO and ASED "
                          "always in training; 8 classes",
              "classes": list(params.CLASSES), "targets": TARGETS,
              "folds_done": done, "missing": [k for k in range(data.NUM_FOLDS) if k not in done],
              "folds": units}
    for mode in ("cold", "adapted"):
        if units:
            cm = np.sum([u[mode]["confusion"] for u in units], axis=0)
            report[mode] = {"uar": metrics.mean_std([u[mode]["uar"] for u in units]),
                            "opus_24k_uar": metrics.mean_std([u[mode]["opus_24k_uar"] for u in units]),
                            "confusion_pooled": cm.tolist()}
    if units:
        report["image"] = plot_confusion(
            report["adapted"]["confusion_pooled"],
            f"RAVDESS CV, {len(units)} folds pooled, adapted (UAR {report['adapted']['uar']['mean']:.3f})",
            DOCS / "confusion_cv.png")
    REPORTS.mkdir(exist_ok=True)
    (REPORTS / "cv.json").write_text(json.dumps(report, indent=1) + "\n")
    return report


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    g = ap.add_mutually_exclusive_group(required=True)
    g.add_argument("--loco", action="store_true", help="leave one corpus out, cold and adapted")
    g.add_argument("--cv", action="store_true", help="RAVDESS 6-fold actor CV")
    g.add_argument("--split", choices=["test"], help="the shipped model on RAVDESS actors 21-24")
    ap.add_argument("--fold", type=int, action="append", help="--loco/--cv: run only fold K (repeatable)")
    data.add_data_argument(ap)
    ap.add_argument("--model", default=None, help="--split: a .tflite to evaluate (default: shipped)")
    ap.add_argument("--jobs", type=int, default=1, help="folds trained in parallel")
    ap.add_argument("--threads", type=int, default=1, help="CPU threads per fold")
    ap.add_argument("--retrain", action="store_true", help="retrain the folds even if done")
    a = ap.parse_args(argv)
    if a.split:
        r = evaluate_test(a.data, a.model)
        print(json.dumps({m: {k: r[m][k] for k in ("uar", "wa", "per_class_recall")}
                          for m in ("cold", "adapted")} | {"opus_24k": r["opus_24k"]}))
        return
    if a.loco:
        r = evaluate_loco(a.fold, a.data, a.jobs, a.threads, a.retrain)
        for corpus, f in r["folds"].items():
            print(f"{corpus:8s} cold UAR {f['cold']['uar']:.3f}  adapted UAR {f['adapted']['uar']:.3f}  "
                  f"neutral {f['adapted']['per_class_recall']['neutral']:.2f}  "
                  f"ECE {f['adapted']['calibration']['ece']:.3f}", file=sys.stderr)
        print(json.dumps({c: {m: f[m]["uar"] for m in ("cold", "adapted")} for c, f in r["folds"].items()}
                         | {"missing": r["missing"], "met": r["met"]}))
        return
    r = evaluate_cv(a.fold, a.data, a.jobs, a.threads, a.retrain)
    print(json.dumps({m: r[m]["uar"] for m in ("cold", "adapted") if m in r} | {"missing": r["missing"]}))


if __name__ == "__main__":
    main()
