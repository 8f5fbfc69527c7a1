"""Train the emotion model.

    python -m ml.train                 # the shipped model: actors 1-20 (val 19, 20 from within)
    python -m ml.train --fold K        # CV fold K (tests actors 4K+1..4K+4), saved under ml/runs/

Seeded (numpy + keras); a tqdm progress bar per epoch.  Features are computed once
by the model's own ``features.LogMel`` layer over the whole corpus (original and
speed-perturbed waveforms) and cached in ml/.cache; augmentation then works on
log-mel frames (see ml/augment.py).  Runs on one CPU thread by default (--threads).
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np

from ml import augment, data, metrics, params

ML_DIR = Path(__file__).resolve().parent
CACHE = ML_DIR / ".cache"
RUNS = ML_DIR / "runs"
SHIPPED_KERAS = ML_DIR / "emotion_model.keras"
SHIPPED_TFLITE = ML_DIR / "emotion_model.tflite"
SPEEDS = (1.0, 0.9, 1.1)
EVAL_HOP_FRAMES = 25        # 0.5 s hop between 3 s windows when scoring a whole clip

DEFAULTS = dict(epochs=150, batch=32, lr=3e-3, weight_decay=2e-3, label_smoothing=0.1,
                dropout=0.3, channels=(16, 32, 64, 128), noise_prob=0.5, mixup_prob=0.5,
                speed_prob=0.6, norm="gain", snr_low=10.0, max_t=20, max_f=10, head="flat",
                refit=True, seed=params.SEED)


def _set_threads(n):
    import tensorflow as tf
    tf.config.threading.set_intra_op_parallelism_threads(n)
    tf.config.threading.set_inter_op_parallelism_threads(n)


def _cache_key(clips) -> str:
    h = hashlib.sha1()
    for k in ("SAMPLE_RATE", "STFT_WINDOW_SAMPLES", "STFT_HOP_SAMPLES", "FFT_LENGTH",
              "MEL_BANDS", "MEL_MIN_HZ", "MEL_MAX_HZ", "LOG_OFFSET", "WINDOW_SAMPLES"):
        h.update(f"{k}={getattr(params, k)};".encode())
    h.update(repr(SPEEDS).encode())
    h.update("|".join(str(c.path.name) for c in clips).encode())
    return h.hexdigest()[:12]


def build_cache(clips, progress=True) -> dict[float, list[np.ndarray]]:
    """Log-mel (float16) of every clip at every speed, via the serving front end."""
    CACHE.mkdir(exist_ok=True)
    f = CACHE / f"logmel_{_cache_key(clips)}.npz"
    if f.exists():
        z = np.load(f)
        out = {}
        for s in SPEEDS:
            flat, off = z[f"x{s}"], z[f"o{s}"]
            out[s] = [flat[off[i]:off[i + 1]] for i in range(len(off) - 1)]
        return out
    import tensorflow as tf
    from scipy.signal import resample_poly
    from ml.features import LogMel
    layer = LogMel()
    fn = tf.function(lambda w: layer(w), input_signature=[tf.TensorSpec([1, None], tf.float32)])
    waves = data.load_waveforms(clips)
    out = {s: [] for s in SPEEDS}
    it = range(len(clips))
    if progress:
        from tqdm import tqdm
        it = tqdm(it, desc="log-mel cache", file=sys.stderr, mininterval=2)
    for i in it:
        for s in SPEEDS:
            w = waves[i]
            if s != 1.0:   # speed s: resample by 1/s, played back at 16 kHz
                w = resample_poly(w, 10, int(round(10 * s))).astype(np.float32)
            if len(w) < params.WINDOW_SAMPLES:   # pad at the end, as serving does
                w = np.pad(w, (0, params.WINDOW_SAMPLES - len(w)))
            out[s].append(fn(w[None]).numpy()[0].astype(np.float16))
    arrays = {}
    for s in SPEEDS:
        off = np.cumsum([0] + [len(a) for a in out[s]])
        arrays[f"x{s}"] = np.concatenate(out[s])
        arrays[f"o{s}"] = off
    np.savez(f, **arrays)
    return out


def clip_windows(feat: np.ndarray, n=params.FRAMES_PER_WINDOW, hop=EVAL_HOP_FRAMES):
    """All n-frame windows of a clip with the given hop (>= 1 window)."""
    t = feat.shape[0]
    if t <= n:
        return [augment.crop(feat, n, None)]
    starts = list(range(0, t - n + 1, hop))
    if starts[-1] != t - n:
        starts.append(t - n)
    return [feat[s:s + n].astype(np.float32) for s in starts]


_PREDICT_FNS = {}


def _predict_fn(classifier):
    import tensorflow as tf
    fn = _PREDICT_FNS.get(id(classifier))
    if fn is None:
        fn = tf.function(lambda x: classifier(x, training=False), input_signature=[
            tf.TensorSpec([None, params.FRAMES_PER_WINDOW, params.MEL_BANDS], tf.float32)])
        _PREDICT_FNS[id(classifier)] = fn
    return fn


def predict_clips(classifier, feats) -> np.ndarray:
    """Clip-level probabilities: mean over 3 s windows (hop 0.5 s)."""
    fn = _predict_fn(classifier)
    wins, owner = [], []
    for i, f in enumerate(feats):
        w = clip_windows(f)
        wins.extend(w)
        owner.extend([i] * len(w))
    wins = np.stack(wins)
    probs = np.concatenate([fn(wins[i:i + 256]).numpy() for i in range(0, len(wins), 256)])
    owner = np.asarray(owner)
    out = np.zeros((len(feats), params.NUM_CLASSES))
    np.add.at(out, owner, probs)
    return out / np.bincount(owner)[:, None]


def make_epoch(feats_by_speed, idx, labels, rng, cfg, mel_gain):
    n = params.FRAMES_PER_WINDOW
    xs = np.empty((len(idx), n, params.MEL_BANDS), dtype=np.float32)
    for j, i in enumerate(idx):
        s = 1.0 if rng.random() >= cfg["speed_prob"] else SPEEDS[1 + rng.integers(0, 2)]
        x = augment.crop(feats_by_speed[s][i], n, rng)
        if rng.random() < cfg["noise_prob"]:
            x = augment.add_noise(x, rng, mel_gain, snr_db=(cfg["snr_low"], 40.0))
        xs[j] = augment.spec_augment(x, rng, max_t=cfg["max_t"], max_f=cfg["max_f"])
    ys = np.eye(params.NUM_CLASSES, dtype=np.float32)[labels[idx]]
    return xs, ys


def train(train_idx, val_idx, clips, feats, cfg, desc="train", progress=True, log=None):
    """Train a classifier on clips[train_idx]; returns (classifier, history)."""
    import keras
    import tensorflow as tf
    from ml import model as M
    from ml.features import mel_matrix

    keras.utils.set_random_seed(cfg["seed"])
    rng = np.random.default_rng(cfg["seed"])
    labels = np.array([c.label for c in clips])
    clf = M.build_classifier(channels=tuple(cfg["channels"]), dropout=cfg["dropout"],
                             norm=cfg["norm"], head=cfg["head"])
    steps_per_epoch = int(np.ceil(len(train_idx) / cfg["batch"]))
    total = steps_per_epoch * cfg["epochs"]
    warm = steps_per_epoch * min(2, cfg["epochs"] - 1)
    sched = keras.optimizers.schedules.CosineDecay(
        0.0, decay_steps=max(total - warm, 1), warmup_target=cfg["lr"], warmup_steps=warm)
    opt = keras.optimizers.AdamW(sched, weight_decay=cfg["weight_decay"])
    counts = np.bincount(labels[train_idx], minlength=params.NUM_CLASSES)
    class_w = tf.constant(counts.sum() / (params.NUM_CLASSES * counts), tf.float32)
    ls = cfg["label_smoothing"]

    @tf.function
    def step(x, y):
        with tf.GradientTape() as tape:
            p = clf(x, training=True)
            ys = y * (1 - ls) + ls / params.NUM_CLASSES
            ce = -tf.reduce_sum(ys * tf.math.log(tf.clip_by_value(p, 1e-7, 1.0)), axis=-1)
            w = tf.reduce_sum(y * class_w, axis=-1)
            loss = tf.reduce_sum(w * ce) / tf.reduce_sum(w) + tf.add_n(clf.losses or [0.0])
        grads = tape.gradient(loss, clf.trainable_variables)
        opt.apply_gradients(zip(grads, clf.trainable_variables))
        return loss

    mel_gain = mel_matrix().sum(axis=0)
    history = []
    from tqdm import tqdm
    bar = tqdm(range(cfg["epochs"]), desc=desc, file=sys.stderr, disable=not progress,
               mininterval=1)
    val_feats = [feats[1.0][i] for i in val_idx]
    for ep in bar:
        t0 = time.time()
        order = rng.permutation(train_idx)
        xs, ys = make_epoch(feats, order, labels, rng, cfg, mel_gain)
        losses = []
        for b in range(0, len(order), cfg["batch"]):
            xb, yb = xs[b:b + cfg["batch"]], ys[b:b + cfg["batch"]]
            xb, yb = augment.mixup(xb, yb, rng, prob=cfg["mixup_prob"])
            losses.append(float(step(tf.constant(xb), tf.constant(yb))))
        rec = {"epoch": ep + 1, "loss": round(float(np.mean(losses)), 4),
               "seconds": round(time.time() - t0, 1)}
        if len(val_idx) and (ep % 5 == 4 or ep == cfg["epochs"] - 1):
            pv = predict_clips(clf, val_feats)
            rec["val_uar"] = round(metrics.summary(labels[val_idx], pv.argmax(1))["uar"], 4)
        history.append(rec)
        bar.set_postfix({k: v for k, v in rec.items() if k != "epoch"})
        if log:
            print(json.dumps(rec), file=log, flush=True)
    return clf, history


def split(clips, train_actors, val_actors, refit):
    """(train, validation) clip indices.  The recipe (epochs included) was chosen by
    watching the validation actors; with ``refit`` the run then trains on them too
    (more speakers) and logs no validation score, as nothing is picked on it."""
    actors = np.array([c.actor for c in clips])
    in_train = np.isin(actors, train_actors)
    if refit:
        return np.flatnonzero(in_train), np.array([], dtype=np.int64)
    in_val = np.isin(actors, val_actors)
    return np.flatnonzero(in_train & ~in_val), np.flatnonzero(in_val)


def actors_of(clips, idx):
    return sorted({clips[i].actor for i in idx})


def run_fold(k, clips, feats, cfg, progress=True):
    """Train CV fold k; saves ml/runs/fold{k}.keras and its clip probabilities."""
    actors = np.array([c.actor for c in clips])
    test_a = data.fold_test_actors(k)
    val_a = data.fold_validation_actors(k)
    te = np.flatnonzero(np.isin(actors, test_a))
    tr, va = split(clips, [a for a in data.TRAIN_ACTORS + data.TEST_ACTORS if a not in test_a],
                   val_a, cfg["refit"])
    RUNS.mkdir(exist_ok=True)
    t0 = time.time()
    with open(RUNS / f"fold{k}.log", "w") as log:
        clf, hist = train(tr, va, clips, feats, cfg, desc=f"fold {k}", progress=progress, log=log)
    secs = time.time() - t0
    probs = predict_clips(clf, [feats[1.0][i] for i in te])
    clf.save(RUNS / f"fold{k}.keras")
    np.savez(RUNS / f"fold{k}_pred.npz", idx=te, probs=probs,
             labels=np.array([clips[i].label for i in te]))
    res = {"fold": k, "test_actors": list(test_a), "val_actors": actors_of(clips, va),
           "train_seconds": round(secs, 1), "history": hist, "config": cfg}
    (RUNS / f"fold{k}.json").write_text(json.dumps(res, indent=1))
    return probs, te, res


def train_shipped(clips, feats, cfg, progress=True):
    import keras  # noqa: F401
    from ml import model as M
    tr, va = split(clips, data.TRAIN_ACTORS, data.VALIDATION_ACTORS, cfg["refit"])
    t0 = time.time()
    RUNS.mkdir(exist_ok=True)
    with open(RUNS / "shipped.log", "w") as log:
        clf, hist = train(tr, va, clips, feats, cfg, desc="shipped", progress=progress, log=log)
    secs = time.time() - t0
    serving = M.build_serving(clf)
    serving.save(SHIPPED_KERAS)
    SHIPPED_TFLITE.write_bytes(M.to_tflite(serving))
    info = {"train_actors": "1-20" if cfg["refit"] else "1-20 minus validation",
            "validation_actors": actors_of(clips, va),
            "train_seconds": round(secs, 1), "final_val_uar": hist[-1].get("val_uar"),
            "config": cfg, "keras_bytes": SHIPPED_KERAS.stat().st_size,
            "tflite_bytes": SHIPPED_TFLITE.stat().st_size,
            "params": int(clf.count_params()), "history": hist}
    (ML_DIR / "reports" / "train_shipped.json").write_text(json.dumps(info, indent=1) + "\n")
    return info


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default=None, help="RAVDESS folder (default ../shared/data/ravdess)")
    ap.add_argument("--fold", type=int, default=None, help="train CV fold K instead of the shipped model")
    ap.add_argument("--epochs", type=int, default=DEFAULTS["epochs"])
    ap.add_argument("--seed", type=int, default=DEFAULTS["seed"])
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--set", action="append", default=[], metavar="KEY=JSON",
                    help="override a training setting, e.g. --set lr=0.002")
    ap.add_argument("--no-progress", action="store_true")
    a = ap.parse_args(argv)
    _set_threads(a.threads)
    cfg = dict(DEFAULTS, epochs=a.epochs, seed=a.seed)
    for kv in a.set:
        k, v = kv.split("=", 1)
        if k not in cfg:
            ap.error(f"unknown setting {k}")
        cfg[k] = json.loads(v)
    clips = data.load_metadata(a.data)
    feats = build_cache(clips, progress=not a.no_progress)
    if a.fold is not None:
        probs, te, res = run_fold(a.fold, clips, feats, cfg, progress=not a.no_progress)
        y = np.array([clips[i].label for i in te])
        s = metrics.summary(y, probs.argmax(1))
        print(json.dumps({"fold": a.fold, "uar": round(s["uar"], 4), "wa": round(s["wa"], 4),
                          "train_seconds": res["train_seconds"]}))
    else:
        info = train_shipped(clips, feats, cfg, progress=not a.no_progress)
        print(json.dumps({k: info[k] for k in ("train_seconds", "final_val_uar", "params",
                                                "tflite_bytes")}))


if __name__ == "__main__":
    main()
