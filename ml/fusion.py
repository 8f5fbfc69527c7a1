"""Does a second view of the voice add to the network?  eGeMAPS functionals fused with it, LOCO.

The network hears the log-mel spectrum, speaker-relative pitch and loudness.  eGeMAPS
(opensmile's 88 clip functionals: pitch in semitones with its slopes, loudness, spectral
balance of voiced and unvoiced frames, formants, voice quality, rhythm) describes the same
voice in other terms; ``frame_functionals`` computes the like of them that the network's own
frames allow (no formants or voice quality), at no cost beside the network's front end.  Per
leave-one-corpus-out fold, a class-balanced RBF SVM on either set is
trained on the two training corpora and its probabilities are multiplied with those of the
network's stored test predictions (a log-linear pool, equal weights; nothing fitted on the
test corpus).  Cold: features standardised over the training data.  Adapted: each training
speaker's features standardised over that speaker's clips, each test clip's over its speaker's
EARLIER clips only, in the fixed shuffled order adapted scoring uses (ml.train.speaker_orders),
shrunk towards the training data's statistics as if they were PRIOR_COUNT clips.  Each group of
eGeMAPS features is also fused alone, to tell which carries what; the whole of eGeMAPS and the
frame functionals are also scored on the RAVDESS CV folds (in-corpus), with those folds' runs.
Those two are also pooled behind a novelty gate: a voice whose speaker's earlier clips lie no
further from the training speakers than the training speakers' own do (a percentile of their
distances, NOVELTY_PERCENTILES) keeps the network's probabilities alone; a farther one is pooled.

    python -m ml.fusion [--data PATH]     # -> ml/reports/fusion.json (eGeMAPS cached in ml/.cache)

A measurement, not a serving path: opensmile's licence is research-only, and it costs tens of
milliseconds a window (ml/MODEL_CARD.md).  Minutes on a CPU once eGeMAPS is cached.
"""
from __future__ import annotations

import argparse
import json
import re

import numpy as np

# ml.baseline imports opensmile, which must come before tensorflow; none of these imports it
from ml import adapt, baseline, cache, calibration, data, metrics, params
from ml.evaluate import DOCS, REPORTS, RUN_REPORTS, TARGETS, save_figure
from ml.probe import standardise
from ml.train import RECIPE_VERSION, commit, speaker_orders, trained_masks

REPORT = REPORTS / "fusion.json"
PRIOR_COUNT = 3.0
WEIGHT = 0.5   # the network's share of the pool; the SVM has the rest
WEIGHTS = tuple(np.round(np.arange(0.0, 1.01, 0.1), 1))   # the shares fitted_weight chooses from
# the sets also scored on the RAVDESS CV folds (in-corpus: does the pool cost there?)
CV_SETS = ("eGeMAPS: all", "network's frames")
# A voice is heard as new once this many of its clips came before; until then the network alone.
MIN_SEEN = 3
# Training speakers' own novelty percentiles tried as the gate's threshold (swept: each reported).
NOVELTY_PERCENTILES = (90, 95, 99)
# beside recipe 7's own runs ("recipe"): the same recipe at 15 epochs, seeds 20260-20262
RUNS = ("nb", "nbb", "nbc")
GROUPS = {"all": r".",
          "pitch": r"^F0semitone",
          "loudness": r"^loudness|equivalentSoundLevel",
          "spectral balance": r"spectralFlux|mfcc|alphaRatio|hammarberg|slope",
          "formants": r"^F[123]",
          "voice quality": r"jitter|shimmer|HNR|logRelF0-H1",
          "rhythm": r"Segment|PeaksPerSec"}


# mel band centres (the HTK scale of ml/features.py), for spectral balance in eGeMAPS's bands
_HZ = 700 * (10 ** (np.linspace(2595 * np.log10(1 + params.MEL_MIN_HZ / 700),
                                2595 * np.log10(1 + params.MEL_MAX_HZ / 700), params.MEL_BANDS + 2) / 2595) - 1)[1:-1]
_DB = 10 / np.log(10)
_DCT = np.cos(np.pi / params.MEL_BANDS * (np.arange(params.MEL_BANDS) + 0.5)[None, :] * np.arange(1, 5)[:, None])


def _level(v):
    """Mean and coefficient of variation (eGeMAPS's amean, stddevNorm)."""
    return [v.mean(), v.std() / (abs(v.mean()) + 1e-6)] if len(v) > 1 else [0.0, 0.0]


def _contour(v):
    """Level, spread, percentiles 20/50/80, their range, rising and falling slopes."""
    if len(v) < 3:
        return [0.0] * 10
    p20, p50, p80 = np.percentile(v, [20, 50, 80])
    d = np.diff(v)
    up, down = d[d > 0], d[d < 0]
    return [*_level(v), p20, p50, p80, p80 - p20, *(np.array([up.mean(), up.std()]) if len(up) else [0, 0]),
            *(np.array([down.mean(), down.std()]) if len(down) else [0, 0])]


def _slope(db, band):
    f = _HZ[band] - _HZ[band].mean()
    return (db[:, band] - db[:, band].mean(axis=1, keepdims=True)) @ f / (f @ f)


def _runs(mask):
    """Lengths of the runs of True and of False in a boolean sequence."""
    edges = np.flatnonzero(np.diff(mask.astype(np.int8))) + 1
    parts = np.split(mask, edges)
    return [len(p) for p in parts if p[0]], [len(p) for p in parts if not p[0]]


def frame_functionals(f: np.ndarray) -> np.ndarray:
    """(56,) eGeMAPS-like functionals of one clip's frames (T, FRAME_FEATURES): pitch in
    semitones and loudness as contours; alpha ratio, Hammarberg index, spectral slopes
    0-500 and 500-1500 Hz and flux of voiced and of unvoiced speech; MFCC 1-4 of voiced
    speech; voiced and unvoiced stretches, loudness peaks per second, periodicity."""
    f = f.astype(np.float64)
    speech = adapt.active_frames(f)
    voiced = adapt.voiced_frames(f)
    if voiced.sum() < 3:
        voiced = speech
    mel = f[:, :params.MEL_BANDS]
    loud = np.exp(mel).sum(axis=1) ** 0.3
    row = _contour(12 / np.log(2) * (f[voiced, params.LOG_F0] - np.log(27.5))) + _contour(loud[speech])
    for part in (voiced, speech & ~voiced):
        m = mel[part] if part.sum() else mel[speech]
        power, db = np.exp(m), _DB * m
        row += _level(_DB * np.log(power[:, _HZ < 1000].sum(1) / power[:, (_HZ >= 1000) & (_HZ < 5000)].sum(1)))
        row += _level(_DB * np.log(power[:, _HZ < 2000].max(1) / power[:, (_HZ >= 2000) & (_HZ < 5000)].max(1)))
        row += _level(_slope(db, _HZ < 500)) + _level(_slope(db, (_HZ >= 500) & (_HZ < 1500)))
        shape = power / power.sum(axis=1, keepdims=True)
        row += _level((np.diff(shape, axis=0) ** 2).sum(axis=1))
        if part is voiced:
            for c in (m @ _DCT.T).T:
                row += _level(c)
    first, last = speech.argmax(), len(speech) - speech[::-1].argmax()
    on, off = _runs(voiced[first:last])
    seconds = speech.sum() * params.STFT_HOP_SECONDS + 1e-6
    lp = loud[speech]
    peaks = int(((lp[1:-1] > lp[:-2]) & (lp[1:-1] > lp[2:])).sum()) if len(lp) > 2 else 0
    per = f[voiced, params.PERIODICITY]
    row += [len(on) / seconds, *(np.array([np.mean(on), np.std(on)]) * params.STFT_HOP_SECONDS if on else [0, 0]),
            *(np.array([np.mean(off), np.std(off)]) * params.STFT_HOP_SECONDS if off else [0, 0]),
            peaks / seconds, per.mean(), per.std()]
    return np.nan_to_num(np.asarray(row, np.float64))


def causal_standardise(x, orders, prior_mean, prior_var, prior_count=PRIOR_COUNT):
    """Each row standardised by the mean and variance of its speaker's rows BEFORE it in
    ``orders`` (speaker -> row indices in order), shrunk towards the prior as if it were
    ``prior_count`` rows: a row's normaliser never depends on itself or on later rows."""
    out = np.zeros_like(x, dtype=np.float64)
    for order in orders.values():
        s1 = prior_count * prior_mean
        s2 = prior_count * (prior_var + prior_mean ** 2)
        n = prior_count
        for i in order:
            mean = s1 / n
            out[i] = (x[i] - mean) / np.sqrt(np.maximum(s2 / n - mean ** 2, 1e-6))
            s1, s2, n = s1 + x[i], s2 + x[i] ** 2, n + 1
    return out


def running_means(x, orders, min_seen=MIN_SEEN):
    """Each row's speaker's mean over the rows BEFORE it in ``orders`` (speaker -> row indices in
    order); NaN while fewer than ``min_seen`` came before."""
    out = np.full(x.shape, np.nan)
    for order in orders.values():
        total, n = np.zeros(x.shape[1]), 0
        for i in order:
            if n >= min_seen:
                out[i] = total / n
            total, n = total + x[i], n + 1
    return out


def novelty(x, train_orders, test_orders):
    """How unlike the training speakers each test row's speaker sounds, from that speaker's
    earlier rows only: the RMS distance of their running mean (running_means) to the nearest
    training speaker's mean, each feature scaled by the spread of the training speakers' means.
    Returns it per test row (in the order of ``test_orders``' rows, NaN before MIN_SEEN rows)
    as {row: distance}, and the reference: the same distance for every training row against the
    OTHER training speakers, which the gate's threshold is a percentile of."""
    names = sorted(train_orders)
    means = np.stack([x[train_orders[s]].mean(0) for s in names])
    scale = means.std(0) + 1e-9

    def nearest(m, skip=None):
        d = np.sqrt((((means - m) / scale) ** 2).mean(1))
        if skip is not None:
            d[skip] = np.inf
        return d.min()

    ref = running_means(x, train_orders)
    reference = np.array([nearest(ref[i], k) for k, s in enumerate(names) for i in train_orders[s]
                          if not np.isnan(ref[i, 0])])
    run = running_means(x, test_orders)
    return {i: np.nan if np.isnan(run[i, 0]) else nearest(run[i]) for o in test_orders.values() for i in o}, reference


def pool(p_network, p_other, trained, weight=WEIGHT):
    """The log-linear pool of two probability arrays (n, classes), renormalised over the
    classes the model was trained on (the others get 0)."""
    logp = weight * np.log(p_network + 1e-9) + (1 - weight) * np.log(p_other + 1e-9)
    return calibration.softmax(np.where(trained > 0, logp, -np.inf))


def svm_probabilities(x_tr, y_tr, x_te):
    from sklearn.calibration import CalibratedClassifierCV
    from sklearn.svm import SVC
    clf = CalibratedClassifierCV(SVC(kernel="rbf", gamma="scale", class_weight="balanced"),
                                 ensemble=False).fit(x_tr, y_tr)
    p = np.zeros((len(x_te), params.NUM_CLASSES))
    p[:, clf.classes_] = clf.predict_proba(x_te)
    return p


def scores(y, p, classes) -> dict:
    s = metrics.summary(y, p.argmax(1))
    return {"uar": round(s["uar"], 4),
            "per_class_recall": {c: s["per_class_recall"][c] for c in classes},
            "ece": round(calibration.reliability(p, y)["ece"], 4)}


def fold(features, clips, in_test, trained, runs):
    """One unit of the protocol (a LOCO or CV fold: ``in_test`` marks its test clips): the
    SVM's scores, and per stored run (``runs``: tag -> run name; those not made are skipped) the
    network's and the pool's; with both models' probabilities per run and mode (and the labels)
    for what is fitted across folds."""
    y = np.array([c.label for c in clips])
    speaker = np.array([c.speaker for c in clips])
    tr = np.where(~in_test)[0]
    te = np.where(in_test & (trained[y] > 0))[0]
    classes = [params.CLASSES[k] for k in sorted(set(y[te]))]
    mean, var = features[tr].mean(0), features[tr].var(0) + 1e-12
    orders = speaker_orders(clips, te)
    causal = causal_standardise(features, orders, mean, var)
    distance, reference = novelty(features, speaker_orders(clips, tr), orders)
    distance = np.array([distance[i] for i in te])
    novel = {q: distance > np.percentile(reference, q) for q in NOVELTY_PERCENTILES}
    svm = {"cold": svm_probabilities((features[tr] - mean) / np.sqrt(var), y[tr],
                                     (features[te] - mean) / np.sqrt(var)),
           "adapted": svm_probabilities(standardise(features[tr], speaker[tr]), y[tr], causal[te])}
    out = {"clips": len(te), "svm": {m: scores(y[te], p, classes) for m, p in svm.items()},
           "novel_share": {q: round(float(np.mean(n)), 4) for q, n in novel.items()}, "runs": {}}
    probs = {}
    for tag, name in runs.items():
        if not (RUN_REPORTS / f"{name}.npz").exists():
            continue
        z = np.load(RUN_REPORTS / f"{name}.npz")
        temperature = json.loads((RUN_REPORTS / f"{name}.json").read_text())["temperature"]
        rows = {int(i): j for j, i in enumerate(z["idx"])}
        rows = [rows[int(i)] for i in te]
        r, probs[tag] = {}, {"trained": trained, "novel": novel}
        for mode in ("cold", "adapted"):
            p = calibration.softmax(np.where(trained > 0, z[mode][rows], -np.inf), temperature)
            r[mode] = {"network": scores(y[te], p, classes),
                       "fused": scores(y[te], pool(p, svm[mode], trained), classes)}
            probs[tag][mode] = {"network": p, "svm": svm[mode]}
        out["runs"][tag] = r
    return out, probs, y[te]


def _pooled(run, mode, weight=WEIGHT):
    """One run's pool for one mode, from the probabilities fold() keeps."""
    return pool(run[mode]["network"], run[mode]["svm"], run["trained"], weight)


def _mean_uar(probs, labels, units, weight):
    """Mean adapted UAR of recipe 7's pool over some units at one share of the network."""
    return np.mean([metrics.summary(labels[u], _pooled(probs[u]["recipe"], "adapted", weight).argmax(1))["uar"]
                    for u in units])


def _log(p):
    with np.errstate(divide="ignore"):   # the classes never trained: log 0
        return np.log(p)


def _ece_other_folds(logps, labels, corpus):
    """The ECE of each of one LOCO fold's log-probability arrays (``logps``: fold -> arrays, one
    per mode) with one temperature fitted on the other folds' arrays, as ml.evaluate's LOCO table
    is calibrated."""
    others = [c for c in logps if c != corpus]
    t = calibration.fit_temperature(np.concatenate([a for c in others for a in logps[c]]),
                                    np.concatenate([labels[c] for c in others for _ in logps[c]]),
                                    np.concatenate([np.full(len(labels[c]), c) for c in others for _ in logps[c]]))
    return [calibration.reliability(calibration.softmax(a, t), labels[corpus])["ece"] for a in logps[corpus]]


def cross_fold_calibration(folds, probs, labels):
    """The ECE of the runs present in every fold, network and pool alike, with one temperature
    per fold fitted on the other folds' test predictions (cold and adapted)."""
    modes = ("cold", "adapted")
    for tag in set.intersection(*(set(v) for v in probs.values())):
        for model in ("network", "fused"):
            logps = {c: [_log(probs[c][tag][m]["network"] if model == "network" else _pooled(probs[c][tag], m))
                         for m in modes] for c in probs}
            for corpus in probs:
                for mode, ece in zip(modes, _ece_other_folds(logps, labels, corpus)):
                    folds[corpus]["runs"][tag][mode][model]["ece_other_folds_temperature"] = round(ece, 4)


def fitted_weight(folds, probs, labels):
    """The network's share of the adapted pool chosen, as the temperature is, on the other
    LOCO folds' test predictions (the one in WEIGHTS with the highest mean UAR there; recipe 7's
    runs), and each fold scored with it."""
    for corpus in probs:
        others = [c for c in probs if c != corpus]
        w = max(WEIGHTS, key=lambda w: _mean_uar(probs, labels, others, w))
        folds[corpus]["fitted_weight"] = {"weight": w, "fitted_on": others,
                                          "adapted_uar": round(_mean_uar(probs, labels, [corpus], w), 4)}


def cv_trade_off(probs, labels, cv, cv_probs, cv_labels):
    """The CV folds scored with the share chosen on all three LOCO folds, and the mean adapted
    UAR of the LOCO folds and of the CV folds at every share: the trade-off read off the test
    folds themselves, a picture, not a choice."""
    w = max(WEIGHTS, key=lambda w: _mean_uar(probs, labels, list(probs), w))
    for k in cv:
        cv[k]["fitted_weight"] = {"weight": w, "fitted_on": list(probs),
                                  "adapted_uar": round(_mean_uar(cv_probs, cv_labels, [k], w), 4)}
    return [{"network_share": w, "loco_mean": round(_mean_uar(probs, labels, list(probs), w), 4),
             "cv_mean": round(_mean_uar(cv_probs, cv_labels, list(cv_probs), w), 4)} for w in WEIGHTS]


def _gated(run, q):
    """Recipe 7's adapted probabilities, pooled for the voices the gate hears as new (percentile q)."""
    return np.where(run["novel"][q][:, None], _pooled(run, "adapted"), run["adapted"]["network"])


def _gated_uar(run, labels, q):
    return metrics.summary(labels, _gated(run, q).argmax(1))["uar"]


def gate_sweep(probs, labels, cv_probs, cv_labels):
    """The pool behind the novelty gate, each threshold of NOVELTY_PERCENTILES: adapted UAR of
    recipe 7's runs on every LOCO and CV fold and their means. The threshold comes from the
    training speakers alone; which percentile to serve is read off the test folds here, so the
    sweep is a picture, not a choice."""
    out = []
    for q in NOVELTY_PERCENTILES:
        loco = {c: round(_gated_uar(probs[c]["recipe"], labels[c], q), 4) for c in probs}
        logps = {c: [_log(_gated(probs[c]["recipe"], q))] for c in probs}
        cv = {k: round(_gated_uar(cv_probs[k]["recipe"], cv_labels[k], q), 4) for k in cv_probs}
        out.append({"percentile": q, "loco": loco, "loco_mean": round(float(np.mean(list(loco.values()))), 4),
                    "loco_ece_other_folds_temperature": {c: round(_ece_other_folds(logps, labels, c)[0], 4)
                                                         for c in probs},
                    "cv": cv, "cv_mean": round(float(np.mean(list(cv.values()))), 4)})
    return out


def show(group, unit, r):
    line = " ".join(f"{t}: {v['adapted']['network']['uar']:.3f} -> {v['adapted']['fused']['uar']:.3f}"
                    for t, v in r["runs"].items())
    print(f"{group:28s} {unit:8s} svm adapted {r['svm']['adapted']['uar']:.3f}  {line}", flush=True)


def plot(report: dict, path):
    """Adapted UAR of recipe 7's runs, alone and pooled, on each LOCO fold and the CV folds' mean."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    units = [*data.CORPORA, "cv"]
    labels = ["RAVDESS left out", "nEMO left out", "ASED left out", "RAVDESS CV (mean of 6)"]

    def adapted(group, unit, which):
        s = report["sets"][group]
        folds = list(s["cv"].values()) if unit == "cv" else [s["folds"][unit]]
        if which == "fitted":
            return np.mean([f["fitted_weight"]["adapted_uar"] for f in folds])
        return np.mean([f["runs"]["recipe"]["adapted"][which]["uar"] for f in folds])

    bars = [("network alone", "eGeMAPS: all", "network", "tab:gray"),
            ("pooled with eGeMAPS (research-only extractor)", "eGeMAPS: all", "fused", "tab:orange"),
            ("pooled with the frame functionals", "network's frames", "fused", "tab:blue"),
            ("the same, network's share fitted on other LOCO folds", "network's frames", "fitted", "tab:cyan")]
    fig, (ax, trade) = plt.subplots(1, 2, figsize=(12.5, 3.9), dpi=110, width_ratios=(2.2, 1))
    width = 0.8 / len(bars)
    for j, (label, group, which, color) in enumerate(bars):
        xs = np.arange(len(units)) + (j - (len(bars) - 1) / 2) * width
        ys = [adapted(group, u, which) for u in units]
        ax.bar(xs, ys, width, label=label, color=color)
        for x, y in zip(xs, ys):
            ax.annotate(f"{y:.3f}", (x, y), ha="center", va="bottom", fontsize=5.5, rotation=90,
                        xytext=(0, 2), textcoords="offset points")
    for k, u in enumerate(units):
        target = TARGETS["cv_uar"] if u == "cv" else TARGETS["loco_uar_adapted"]
        ax.hlines(target, k - 0.45, k + 0.45, color="tab:red", lw=0.9, ls=":",
                  label="target" if k == 0 else None)
    ax.set_xticks(range(len(units)), labels, fontsize=8)
    ax.set_ylim(0.25, 0.85)
    ax.set_ylabel("UAR, adapted (recipe 7)")
    ax.legend(fontsize=6.5, loc="upper left", ncol=2)
    ax.set_title("A second model on speaker-normalised clip functionals, pooled with the network "
                 "(ml/reports/fusion.json)", fontsize=8.5)
    for group, color in (("eGeMAPS: all", "tab:orange"), ("network's frames", "tab:blue")):
        sweep = report["sets"][group]["share_sweep"]
        trade.plot([r["cv_mean"] for r in sweep], [r["loco_mean"] for r in sweep], marker="o", ms=3,
                   color=color, label=group)
        for r in sweep[5:]:
            trade.annotate(f"{r['network_share']:.1f}", (r["cv_mean"], r["loco_mean"]), fontsize=6,
                           xytext=(3, 3), textcoords="offset points")
        gate = report["sets"][group]["novelty_gate"]
        trade.scatter([g["cv_mean"] for g in gate], [g["loco_mean"] for g in gate], marker="*", s=40, color=color,
                      edgecolor="black", linewidth=0.4, zorder=3, label=f"{group}, pooled for new voices only")
        for g in gate:
            trade.annotate(f"p{g['percentile']}", (g["cv_mean"], g["loco_mean"]), fontsize=6,
                           xytext=(3, -7), textcoords="offset points")
    trade.axvline(TARGETS["cv_uar"], color="tab:red", lw=0.9, ls=":", label="CV target")
    trade.set_xlim(0.64, 0.715)
    trade.set_ylim(0.395, 0.445)
    trade.set_xlabel("RAVDESS CV, mean adapted UAR")
    trade.set_ylabel("LOCO, mean adapted UAR")
    trade.set_title("the network's share of the pool (0 to 1) and the\nnovelty gate's percentile "
                    "(p90-p99), read off the test folds", fontsize=8)
    trade.legend(fontsize=6.5, loc="lower left")
    return save_figure(fig, path)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    data.add_data_argument(ap)
    a = ap.parse_args(argv)
    clips = data.load_corpora(a.data)
    egemaps = baseline.extract(clips)
    names = baseline.feature_names()
    sets = {f"eGeMAPS: {group}": egemaps[:, [k for k, n in enumerate(names) if re.search(pattern, n)]]
            for group, pattern in GROUPS.items()}
    sets["network's frames"] = np.stack([frame_functionals(f) for f in cache.load(clips)["orig"]])
    masks = trained_masks(clips)
    report = {"commit": commit(), "recipe": RECIPE_VERSION, "prior_count": PRIOR_COUNT,
              "network_weight": WEIGHT, "min_seen": MIN_SEEN, "sets": {}}
    corpus = np.array([c.corpus for c in clips])
    speaker = np.array([c.speaker for c in clips])
    every_class = np.ones(params.NUM_CLASSES)
    for group, x in sets.items():
        report["sets"][group] = {"features": x.shape[1], "folds": {}}
        probs, labels = {}, {}
        for test in data.CORPORA:
            runs = {"recipe": f"loco_{test}"} | {tag: f"loco_{test}_{tag}" for tag in RUNS}
            r, probs[test], labels[test] = fold(x, clips, corpus == test, masks[test], runs)
            report["sets"][group]["folds"][test] = r
            show(group, test, r)
        cross_fold_calibration(report["sets"][group]["folds"], probs, labels)
        fitted_weight(report["sets"][group]["folds"], probs, labels)
        if group not in CV_SETS:
            continue
        cv, cv_probs, cv_labels = {}, {}, {}
        for k in range(data.NUM_FOLDS):
            held_out = np.isin(speaker, sorted(data.ravdess_speakers(data.fold_test_actors(k))))
            cv[k], cv_probs[k], cv_labels[k] = fold(x, clips, held_out, every_class, {"recipe": f"cv_fold{k}"})
            show(group, f"CV {k}", cv[k])
        report["sets"][group]["share_sweep"] = cv_trade_off(probs, labels, cv, cv_probs, cv_labels)
        report["sets"][group]["novelty_gate"] = gate_sweep(probs, labels, cv_probs, cv_labels)
        for g in report["sets"][group]["novelty_gate"]:
            print(f"{group:28s} gate p{g['percentile']}: LOCO {g['loco_mean']:.4f} CV {g['cv_mean']:.4f}", flush=True)
        report["sets"][group]["cv"] = cv
    report["figure"] = plot(report, DOCS / "fusion.png")
    REPORT.write_text(json.dumps(report, indent=1) + "\n")
    print(f"wrote {REPORT} and {report['figure']}")


if __name__ == "__main__":
    main()
