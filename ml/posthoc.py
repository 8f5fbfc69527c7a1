"""Corrections after training, measured on stored predictions: do they help on unseen corpora?

Calm and disgust exist only in RAVDESS, so on a corpus without them the model still says
"calm" for some neutral or sad clips (a nEMO sad clip heard as calm is wrong). Three fixes need
no training, only the logits every LOCO and CV run stores (ml/reports/runs/*.npz):

* **label-set mixture**: the probabilities renormalised over each training corpus's classes and
  averaged (a new corpus's classes taken as one of the training corpora's sets); temperature
  refitted the same way on the other folds;
* **label-set prior**: log of the share of training corpora that teach each class added to the
  log-probabilities (calm and disgust at a third, in the shipped model);
* **vector scaling**: a temperature and a bias per class fitted on the other folds' test
  predictions (negative log-likelihood over each corpus's own classes, as the masked loss);
* **neutral bias**: one number added to neutral's log-probability, the one of NEUTRAL_BIASES
  that gives the other folds' test predictions the highest mean UAR (cold and adapted): new
  voices' neutral speech is the class most often missed. On the CV folds, the bias fitted on
  all three LOCO folds, as the shipped model would carry it.

Scored on each LOCO fold (fitted without it), and the label-set corrections on the RAVDESS CV
folds done, where calm and disgust are real. A fourth check scores the shipped model on its
validation speakers of nEMO and ASED (never trained on) with clips shorter than a window tiled
instead of zero-padded.

    python -m ml.posthoc [--data PATH]     # -> ml/reports/posthoc.json
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
from scipy.optimize import minimize

from ml import calibration, data, metrics, params
from ml.evaluate import RUN_REPORTS, run_done
from ml.train import DEFAULTS, RECIPE_VERSION, VALIDATION, commit, trained_masks

REPORT = Path(__file__).resolve().parent / "reports" / "posthoc.json"
MODES = ("cold", "adapted")
NEUTRAL = params.CLASSES.index("neutral")
NEUTRAL_BIASES = np.round(np.arange(0.0, 2.0001, 0.05), 2)


def mixture(probs: np.ndarray, sets: list[np.ndarray]) -> np.ndarray:
    out = np.zeros_like(probs)
    for s in sets:
        q = probs * s
        out += q / q.sum(axis=1, keepdims=True)
    return out / len(sets)


def _fit(objective, size):
    return minimize(objective, np.zeros(size), method="L-BFGS-B").x


def fit_mixture_temperature(parts) -> float:
    """parts: (logits, labels, sets) of the fitting folds."""
    def nll(x):
        t = np.exp(x[0])
        return -np.mean(np.concatenate([np.log(mixture(calibration.softmax(lg, t), sets)[np.arange(len(y)), y] + 1e-12)
                                        for lg, y, sets in parts]))
    return float(np.exp(_fit(nll, 1)[0]))


def fit_vector_scaling(parts) -> tuple[float, np.ndarray]:
    """parts: (logits, labels, own classes) of the fitting folds; a class no part has keeps bias 0."""
    seen = np.sum([m for _, _, m in parts], axis=0) > 0

    def nll(x):
        total, n = 0.0, 0
        for lg, y, m in parts:
            z = np.where(m > 0, lg / np.exp(x[0]) + x[1:], -np.inf)
            z = z - z.max(axis=1, keepdims=True)
            total -= (z[np.arange(len(y)), y] - np.log(np.exp(z).sum(axis=1))).sum()
            n += len(y)
        return total / n + 1e-3 * float(np.sum(x[1:] ** 2))

    x = _fit(nll, params.NUM_CLASSES + 1)
    return float(np.exp(x[0])), x[1:] * seen


def with_neutral_bias(logp: np.ndarray, bias: float) -> np.ndarray:
    out = np.array(logp, np.float64)
    out[:, NEUTRAL] += bias
    return calibration.softmax(out, 1.0)


def fit_neutral_bias(parts) -> float:
    """parts: (log-probabilities, labels) of the fitting folds and modes."""
    def mean_uar(bias):
        return np.mean([metrics.summary(y, with_neutral_bias(lp, bias).argmax(axis=1))["uar"] for lp, y in parts])
    return float(max(NEUTRAL_BIASES, key=mean_uar))


def _scores(y, probs, per_class=False) -> dict:
    s = metrics.summary(y, probs.argmax(axis=1))
    out = {"uar": round(s["uar"], 4), "neutral_recall": s["per_class_recall"]["neutral"],
           "ece": calibration.reliability(probs, y)["ece"]}
    if per_class:
        present = {params.CLASSES[i] for i in y}
        out["per_class_recall"] = {c: r for c, r in s["per_class_recall"].items() if c in present}
    return out


def loco(clips) -> tuple[dict, float | None]:
    """Each LOCO fold's scores with every correction fitted on the other folds, and the neutral
    bias fitted on all of them (None until every fold is done)."""
    masks, own = trained_masks(clips), {c: data.class_mask(clips, c) for c in data.CORPORA}
    folds = {}
    for c in data.CORPORA:
        if not run_done(f"loco_{c}", DEFAULTS):
            continue
        z = np.load(RUN_REPORTS / f"loco_{c}.npz")
        keep = masks[c][z["labels"]] > 0
        logits = {m: np.where(masks[c] > 0, z[m][keep], -np.inf) for m in MODES}
        folds[c] = {"y": z["labels"][keep], "logits": logits, "trained": masks[c],
                    "sets": [own[o] * masks[c] for o in data.CORPORA if o != c], "own": own[c] * masks[c]}
    out = {}
    for c, f in folds.items():
        others = [folds[o] for o in folds if o != c]
        if not others:
            continue
        t0 = calibration.cross_corpus_temperature(RUN_REPORTS, [o for o in folds if o != c], masks)
        t_mix = fit_mixture_temperature([(o["logits"][m], o["y"], o["sets"]) for o in others for m in MODES])
        t_vs, bias = fit_vector_scaling([(np.where(o["trained"] > 0, o["logits"][m], -30.0), o["y"], o["own"])
                                         for o in others for m in MODES])
        prior = np.log(np.maximum(np.sum(f["sets"], axis=0), 1e-12) / len(f["sets"]))
        neutral = fit_neutral_bias([(log_probs(o["logits"][m], t0), o["y"]) for o in others for m in MODES])
        row = {"temperature": round(t0, 3), "mixture_temperature": round(t_mix, 3),
               "vector_scaling": {"temperature": round(t_vs, 3), "bias": np.round(bias, 3).tolist()},
               "neutral_bias": neutral}
        for m in MODES:
            lg, y = f["logits"][m], f["y"]
            logp = log_probs(lg, t0)
            row[m] = {"plain": _scores(y, np.exp(logp)),
                      "label_set_mixture": _scores(y, mixture(calibration.softmax(lg, t_mix), f["sets"])),
                      "label_set_prior": _scores(y, calibration.softmax(logp + prior, 1.0)),
                      "vector_scaling": _scores(y, calibration.softmax(lg / t_vs + bias, 1.0)),
                      "neutral_bias": _scores(y, with_neutral_bias(logp, neutral))}
        out[c] = row
    every = None
    if len(folds) == len(data.CORPORA):
        t_all = calibration.cross_corpus_temperature(RUN_REPORTS, list(folds), masks)
        every = fit_neutral_bias([(log_probs(f["logits"][m], t_all), f["y"]) for f in folds.values() for m in MODES])
    return out, every


def log_probs(logits, temperature):
    return np.log(calibration.softmax(logits, temperature) + 1e-30)


def cv(clips, neutral_bias=None) -> dict:
    sets = [data.class_mask(clips, c) for c in data.CORPORA]
    prior = np.log(np.sum(sets, axis=0) / len(sets))
    out = {}
    for k in range(data.NUM_FOLDS):
        if not run_done(f"cv_fold{k}", DEFAULTS):
            continue
        z, info = np.load(RUN_REPORTS / f"cv_fold{k}.npz"), json.loads((RUN_REPORTS / f"cv_fold{k}.json").read_text())
        row = {}
        for m in MODES:
            logp = log_probs(z[m], info["temperature"])
            p = np.exp(logp)
            row[m] = {"plain": _scores(z["labels"], p), "label_set_mixture": _scores(z["labels"], mixture(p, sets)),
                      "label_set_prior": _scores(z["labels"], calibration.softmax(logp + prior, 1.0))}
            if neutral_bias is not None:
                row[m]["neutral_bias"] = _scores(z["labels"], with_neutral_bias(logp, neutral_bias))
        out[f"fold{k}"] = row
    return out


def short_clips(clips) -> dict:
    """The shipped model on its nEMO and ASED validation speakers: zero-padded against tiled."""
    from ml.inference import EmotionRecognizer

    rec = EmotionRecognizer.load()
    speakers = {s for corpus in ("nemo", "ased") for s in VALIDATION[corpus]}
    chosen = [c for c in clips if c.speaker in speakers]
    win = params.WINDOW_SAMPLES
    probs = {"zero_padded": [], "tiled": []}
    for clip in chosen:
        x, _ = data.read_audio(clip.path)
        x = x.astype(np.float32)
        p = rec.clip_probabilities(x)[0]
        probs["zero_padded"].append(p)
        probs["tiled"].append(rec.probabilities([np.tile(x, -(-win // len(x)))[:win]])[0] if len(x) < win else p)
    out = {}
    for corpus in ("nemo", "ased"):
        sel = np.array([c.corpus == corpus for c in chosen])
        y = np.array([c.label for c in chosen])[sel]
        out[corpus] = {"speakers": list(VALIDATION[corpus]), "clips": int(sel.sum()),
                       **{k: _scores(y, np.array(v)[sel], per_class=True) for k, v in probs.items()}}
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    data.add_data_argument(ap)
    a = ap.parse_args(argv)
    clips = data.load_corpora(a.data)
    folds, neutral_bias = loco(clips)
    report = {"recipe": RECIPE_VERSION, "commit": commit(), "loco": folds, "neutral_bias_all_loco_folds": neutral_bias,
              "cv": cv(clips, neutral_bias), "short_clips": short_clips(clips)}
    REPORT.write_text(json.dumps(report, indent=1) + "\n")
    for c, row in report["loco"].items():
        for m in MODES:
            print(f"LOCO {c:8s} {m:8s} " + "  ".join(f"{k} {v['uar']:.3f}" for k, v in row[m].items()))
    for k, row in report["cv"].items():
        for m in MODES:
            print(f"CV {k} {m:8s} " + "  ".join(f"{n} {v['uar']:.3f}" for n, v in row[m].items()))
    for c, row in report["short_clips"].items():
        print(f"short clips {c}: zero-padded {row['zero_padded']['uar']:.3f}, tiled {row['tiled']['uar']:.3f}")
    print(f"-> {REPORT}")


if __name__ == "__main__":
    main()
