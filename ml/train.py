"""Train the emotion model on the three corpora.

    python -m ml.train                 # the shipped model (RAVDESS actors 21-24 held out)
    python -m ml.train --export        # re-export it (its temperature once the LOCO folds are done)
    python -m ml.train --convert       # only its .tflite again, from ml/emotion_model.keras
    python -m ml.train --loco CORPUS   # leave-one-corpus-out run: trains on the other two
    python -m ml.train --fold K        # RAVDESS CV fold K (actors 4K+1..4K+4 held out;
                                       # nEMO and ASED always in training)

Each run is one unit of the protocol: its classifier is saved under ml/runs/<name>/, and
its test-clip logits (cold and adapted) and summary (commit, recipe, settings, history,
temperature) under ml/reports/runs/<name>.npz and .json, so a protocol can be finished
over several sessions (ml.evaluate reuses every run made with the current recipe).
Seeded (numpy + keras); a tqdm progress bar per run.

Recipe:
  * features: log-mel, log F0 and periodicity per frame from the model's own front end,
    cached once per clip in three versions (original and two speed + lossy-codec round trips, ml/cache.py);
  * speaker adaptation: each example comes with its speaker's statistics pooled from a
    random number (sometimes none: cold start) of that speaker's OTHER clips;
  * loss: a masked (partial-label) softmax cross-entropy: a clip's softmax runs over the
    classes its corpus has, so a class a corpus lacks is never taught as "not this", with one
    exception (subsumed_by): calm and disgust, which RAVDESS alone has, are near kin of
    neutral and angry, so a corpus without them is asked about calm for its clips of every
    class but neutral (recipe 5) and about disgust for every class but angry (recipe 6): an
    acted sad clip is neither calm nor disgust in any corpus (masked, calm drew 963 of nEMO's
    4,481 clips; disgust drew 304 adapted), while its neutral clips keep calm masked and its angry
    ones disgust; class-balanced within a corpus, corpora balanced by the square root of
    their size, and neutral clips weighed twice in every corpus (class_boost, recipe 7): new
    voices' neutral speech, most of what users say, was the class most often heard as an
    emotion;
  * augmentation: random crop, noise, SpecAugment, mixup within a corpus;
  * optionally (corpus_adversary > 0, a candidate, not the recipe): a corpus classifier on the
    embedding behind a gradient reversal (DANN), so the embedding learns to hide which corpus
    a clip is from: calm and disgust come from RAVDESS alone, and an embedding that carries
    the corpus lets them stand for "a RAVDESS-like voice";
  * optionally (mixstyle > 0, a candidate, not the recipe): MixStyle after the first two conv
    blocks (ml/model.py), each example's feature statistics mixed with another's of the batch;
  * optionally (cross_mix > 0, a candidate, not the recipe): an example's log-mel frames mixed
    with those of the same class from another corpus (mix_across_corpora);
  * optionally (affect_aux > 0, a candidate, not the recipe): a training-only head on the
    embedding regressing the clip's valence and arousal (its class's place on the circumplex,
    ml/affect.py), a target that means the same in every corpus, for classes it lacks too;
  * optionally (bands < MEL_BANDS, a candidate, not the recipe): the CNN hears only the lowest
    bands (48: up to about 4 kHz, where pitch, formants and loudness lie; above them codecs,
    microphones and rooms differ most); the prosody branch is unchanged;
  * optionally (instance_norm > 0, a candidate, not the recipe): IBN blocks, half of each of the
    first convolution blocks' channels normalised per clip (ml/model.py), so that a clip's level
    of each early filter (its microphone, room, corpus) is not passed on;
  * optionally (neutral_history > 0, a candidate, not the recipe): that share of the speaker
    histories drawn from the speaker's neutral clips only, the history a user mostly has;
  * optionally (class_contrast > 0, a candidate, not the recipe): a supervised contrastive loss
    on the embedding whose positives are clips of the same class from another corpus
    (cross_corpus_contrast), so that a class is embedded alike whichever corpus voiced it;
  * optionally (corpus_bias > 0, a candidate, not the recipe): "undoing dataset bias" (Khosla
    et al., 2012): a training-only linear head gives each corpus its own correction of the
    logits, and the loss asks the corrected logits (this weight) and the shared ones (weight 1)
    about each clip, so what only one corpus's clips show can go to its correction; a new voice
    is served the shared logits alone (corpus_biased_logits);
  * optionally (spectral_dropout > 0, a candidate, not the recipe): that share of the examples
    lose the spectral branch's pooled summary whole (ml/model.py) and are classified from the
    prosody branch alone, whose speaker-relative cues carry across corpora best;
  * optionally (time_pool > 1, a candidate, not the recipe): the CNN on frames averaged in
    time by that factor, its arithmetic divided by it (ml/model.py);
  * optionally (fine_time > 0, a candidate, not the recipe): the opposite, that many of the first
    convolution blocks pool in frequency only, the blocks after them on 20 ms steps (ml/model.py);
  * optionally (distil > 0, a candidate, not the recipe): distillation from trained runs of the
    same unit (distil_from: their tags), the labels blended with the teachers' mean
    probabilities on each batch as the student sees it (distillation_target), to carry an
    ensemble's accuracy, or a larger network's, into one network;
  * optionally (speaker_share, a measurement, not a recipe): only that share of a corpus's
    training speakers, the first of a fixed shuffle (so a smaller share is part of a larger
    one; 0: none), to measure how the left-out corpora's UAR grows with the number of training
    voices, and with the number of training corpora;
  * calibration: one temperature fitted on validation speakers held out of training.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np

from ml import adapt, augment, cache, calibration, data, metrics, params

ML_DIR = Path(__file__).resolve().parent
RUNS = ML_DIR / "runs"
RUN_REPORTS = ML_DIR / "reports" / "runs"
SHIPPED_KERAS = ML_DIR / "emotion_model.keras"
SHIPPED_TFLITE = ML_DIR / "emotion_model.tflite"
EVAL_HOP_FRAMES = 25        # 0.5 s hop between 3 s windows when scoring a whole clip
RECIPE_VERSION = "multicorpus-masked-adapt-prosody/7"

DEFAULTS = dict(epochs=30, batch=32, crop_frames=100, lr=3e-3, weight_decay=2e-3, label_smoothing=0.1,
                dropout=0.3, channels=(16, 32, 64, 128), noise_prob=0.3, mixup_prob=0.3,
                aug_prob=0.6, snr_low=10.0, max_t=20, max_f=10, cold_prob=0.25, max_history=40,
                gain_jitter=0.7, corpus_balance=0.5, teacher_feat=0.0, teacher_kd=0.0, eq_db=6.0,
                warp=0.1, corpus_repeat={"ravdess": 3}, corpus_adversary=0.0, reverb_prob=0.0, average_last=0,
                mixstyle=0.0, cross_mix=0.0, gain_view=True, class_boost={"neutral": 2.0}, affect_aux=0.0,
                bands=params.MEL_BANDS, separable_from=0, instance_norm=0, neutral_history=0.0,
                class_contrast=0.0, corpus_bias=0.0, spectral_dropout=0.0, time_pool=1, distil=0.0,
                distil_from=[], fine_time=0, speaker_share={},
                subsumed_by={"calm": "neutral", "disgust": "angry"}, seed=params.SEED)
# A setting added later defaults to what runs made before it did (or comes with a new recipe
# version, as subsumed_by did): ml.evaluate counts a run whose stored settings lack it as made
# with its default.

# validation speakers (temperature, monitoring), never in training: RAVDESS pairs are
# chosen per run; from the other corpora these, when the corpus is in training
VALIDATION = {"nemo": ("nemo_TP0",), "ased": ("ased_05", "ased_18", "ased_31", "ased_44", "ased_57")}
SHIPPED_RAVDESS_VALIDATION = (19, 20)
# Speakers the shipped model was not trained on, by corpus: RAVDESS's test actors, and the
# validation speakers of nEMO and ASED (which only fit its temperature).
SHIPPED_HELD_OUT = {"ravdess": sorted(data.ravdess_speakers(data.TEST_ACTORS)),
                    **{corpus: list(speakers) for corpus, speakers in VALIDATION.items()}}


def _set_threads(n):
    import tensorflow as tf
    tf.config.threading.set_intra_op_parallelism_threads(n)
    tf.config.threading.set_inter_op_parallelism_threads(n)


def commit() -> str:
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ML_DIR, text=True,
                              capture_output=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


# -- splits ---------------------------------------------------------------------------
def plan(clips, loco: str | None = None, fold: int | None = None) -> dict:
    """Speaker sets of one run: {"name", "test", "validation", "train"} (sets of speakers)."""
    speakers = {c.speaker for c in clips}
    if loco:
        if loco not in data.CORPORA:
            raise ValueError(f"unknown corpus {loco!r}; one of {', '.join(data.CORPORA)}")
        name = f"loco_{loco}"
        test = {c.speaker for c in clips if c.corpus == loco}
        ravdess_val = SHIPPED_RAVDESS_VALIDATION
    elif fold is not None:
        name = f"cv_fold{fold}"
        test = data.ravdess_speakers(data.fold_test_actors(fold))
        nxt = data.fold_test_actors((fold + 1) % data.NUM_FOLDS)
        ravdess_val = (nxt[2], nxt[3])
    else:
        name = "shipped"
        test = data.ravdess_speakers(data.TEST_ACTORS)
        ravdess_val = SHIPPED_RAVDESS_VALIDATION
    val = set(data.ravdess_speakers(ravdess_val))
    for names in VALIDATION.values():
        val.update(names)
    val = (val & speakers) - test
    return {"name": name, "test": test, "validation": val, "train": speakers - test - val}


def share_speakers(clips, speakers, share: dict) -> set:
    """The speakers kept when only share[corpus] of each named corpus's are: the first of a
    shuffle fixed by params.SEED (never the run's seed), at least one unless the share is 0
    (the corpus left out of training)."""
    kept = set(speakers)
    for corpus, fraction in share.items():
        if corpus not in data.CORPORA or not isinstance(fraction, (int, float)) or not 0 <= fraction <= 1:
            raise ValueError(f"speaker_share: {corpus!r}: {fraction!r} (a corpus, a share in [0, 1])")
        own = sorted({c.speaker for c in clips if c.corpus == corpus} & kept)
        order = np.random.default_rng(params.SEED).permutation(len(own))
        keep = max(1, round(fraction * len(own))) if fraction else 0
        kept -= {own[i] for i in order[keep:]}
    return kept


def indices(clips, speakers) -> np.ndarray:
    return np.array([i for i, c in enumerate(clips) if c.speaker in speakers], dtype=np.int64)


# -- speaker statistics ---------------------------------------------------------------
def clip_stats(feats) -> dict[str, np.ndarray]:
    """{version: (N, STATS_SIZE)} statistics of each whole clip."""
    return {v: np.stack([adapt.frame_stats(f.astype(np.float32)) for f in fs])
            for v, fs in feats.items()}


def sampled_history(i, same_speaker, stats, rng, cfg, neutral) -> np.ndarray:
    """Statistics of a random number of the speaker's other clips (none: cold start); with
    probability neutral_history, of their neutral clips only, as most of a user's speech is."""
    others = same_speaker[same_speaker != i]
    if not len(others) or rng.random() < cfg["cold_prob"]:
        return adapt.empty()
    if cfg["neutral_history"] > 0 and rng.random() < cfg["neutral_history"] and neutral[others].any():
        others = others[neutral[others]]
    k = int(np.exp(rng.uniform(0, np.log(min(len(others), cfg["max_history"]) + 1))))
    k = max(1, min(k, len(others)))
    pick = rng.choice(others, size=k, replace=False)
    versions = list(stats)
    h = adapt.merge_all(stats[versions[rng.integers(len(versions))]][j] for j in pick)
    h[:params.MEL_BANDS] += rng.uniform(-cfg["gain_jitter"], cfg["gain_jitter"])  # another day's level
    return h


def speaker_orders(clips, idx, seed=params.SEED) -> dict[str, list[int]]:
    """Each speaker's clips among idx in the fixed shuffled order adapted scoring uses."""
    by_speaker: dict[str, list[int]] = {}
    for i in idx:
        by_speaker.setdefault(clips[i].speaker, []).append(int(i))
    return {spk: [int(i) for i in np.random.default_rng([seed, sum(map(ord, spk))]).permutation(members)]
            for spk, members in sorted(by_speaker.items())}


def online_histories(clips, idx, window_stats, seed=params.SEED) -> dict[int, np.ndarray]:
    """What --adapt serving knows before each test clip: each speaker's clips in a fixed
    shuffled order, the history of clip j pooled from the windows of the clips before it
    (never itself or later ones).  window_stats[i]: list of the stats of clip i's windows."""
    out = {}
    for order in speaker_orders(clips, idx, seed).values():
        h = adapt.empty()
        for i in order:
            out[i] = h
            for s in window_stats[i]:
                h = adapt.merge(h, s)
    return out


# -- windows and prediction -------------------------------------------------------------
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
        fn = tf.function(lambda x, s: classifier([x, s], training=False), input_signature=[
            tf.TensorSpec([None, params.FRAMES_PER_WINDOW, params.FRAME_FEATURES], tf.float32),
            tf.TensorSpec([None, adapt.STATS_SIZE], tf.float32)])
        _PREDICT_FNS[id(classifier)] = fn
    return fn


def predict_logits(classifier, feats, histories) -> np.ndarray:
    """Clip-level logits: the log of the mean softmax over a clip's 3 s windows (hop 0.5 s),
    every window with the clip's speaker history."""
    fn = _predict_fn(classifier)
    wins, hist, owner = [], [], []
    for i, (f, h) in enumerate(zip(feats, histories)):
        w = clip_windows(f)
        wins.extend(w)
        hist.extend([h] * len(w))
        owner.extend([i] * len(w))
    wins, hist = np.stack(wins), np.stack(hist).astype(np.float32)
    logits = np.concatenate([fn(wins[i:i + 256], hist[i:i + 256]).numpy()
                             for i in range(0, len(wins), 256)])
    p = np.exp(logits - logits.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    owner = np.asarray(owner)
    out = np.zeros((len(feats), params.NUM_CLASSES))
    np.add.at(out, owner, p)
    return np.log(out / np.bincount(owner)[:, None] + 1e-12)


def window_stats_of(feats) -> list[list[np.ndarray]]:
    return [[adapt.frame_stats(w) for w in clip_windows(f)] for f in feats]


def score_clips(classifier, clips, idx, feats) -> dict[str, np.ndarray]:
    """Logits of clips[idx] cold and adapted online (per speaker, earlier clips only);
    feats[i] is clip i's frame features (a list over all clips, or a dict over idx)."""
    fs = [feats[i] for i in idx]
    hist = online_histories(clips, idx, dict(zip(map(int, idx), window_stats_of(fs))))
    return {"cold": predict_logits(classifier, fs, [adapt.empty()] * len(fs)),
            "adapted": predict_logits(classifier, fs, [hist[int(i)] for i in idx])}


# -- training -----------------------------------------------------------------------------
def example_weights(clips, idx, cfg) -> np.ndarray:
    """Class-balanced within each corpus; corpora weighted by size ** -corpus_balance; a class
    named in class_boost ({name: factor}) weighs that factor more in every corpus."""
    corpus = np.array([clips[i].corpus for i in idx])
    label = np.array([clips[i].label for i in idx])
    w = np.zeros(len(idx))
    for c in set(corpus):
        in_c = corpus == c
        counts = np.bincount(label[in_c], minlength=params.NUM_CLASSES)
        k = (counts > 0).sum()
        w[in_c] = in_c.sum() / (k * counts[label[in_c]]) * in_c.sum() ** -cfg["corpus_balance"]
    for name, factor in cfg["class_boost"].items():
        w[label == params.CLASSES.index(name)] *= factor
    return (w / w.mean()).astype(np.float32)


def label_masks(clips, train_idx, cfg) -> dict[str, np.ndarray]:
    """Per corpus, the classes a clip's softmax runs over, a row per label ((NUM_CLASSES,
    NUM_CLASSES)): the corpus's own classes, plus each trained class it lacks that
    ``subsumed_by`` maps to classes it has (one or a list), except in those classes' rows."""
    trained = np.max([data.class_mask(clips, c) for c in {clips[i].corpus for i in train_idx}], axis=0)
    out = {}
    for corpus in data.CORPORA:
        own = data.class_mask(clips, corpus)
        m = np.tile(own, (params.NUM_CLASSES, 1))
        for absent, parents in cfg["subsumed_by"].items():
            a = params.CLASSES.index(absent)
            held = [p for p in map(params.CLASSES.index, [parents] if isinstance(parents, str) else parents)
                    if own[p]]
            if trained[a] and not own[a] and held:
                m[:, a] = 1.0
                m[held, a] = 0.0
        out[corpus] = m
    return out


def make_epoch(feats, stats, order, clips, speaker_members, masks, weights, rng, cfg, mel_gain):
    n = cfg["crop_frames"]      # shorter than a serving window: cheaper, and pooling is length-free
    xs = np.empty((len(order), n, params.FRAME_FEATURES), np.float32)
    b = params.MEL_BANDS        # the augmentations below change the log-mel part only
    hs = np.empty((len(order), adapt.STATS_SIZE), np.float32)
    aug_versions = cache.VERSIONS[1:]
    neutral = np.array([c.label == params.CLASSES.index("neutral") for c in clips])
    for j, i in enumerate(order):
        v = aug_versions[rng.integers(len(aug_versions))] if rng.random() < cfg["aug_prob"] else "orig"
        frames = augment.crop(feats[v][i], n, rng)
        x = frames[:, :b]
        if cfg["reverb_prob"] > 0 and rng.random() < cfg["reverb_prob"]:
            x = augment.reverb(x, rng)
        if rng.random() < cfg["noise_prob"]:
            x = augment.add_noise(x, rng, mel_gain, snr_db=(cfg["snr_low"], 40.0))
        h = sampled_history(i, speaker_members[clips[i].speaker], stats, rng, cfg, neutral)
        if cfg["eq_db"] > 0:     # one channel for the clip and the speaker's history
            curve = augment.eq_curve(rng, cfg["eq_db"])
            x = x + curve
            if h[adapt.MEL_COUNT] > 0:
                h[:b] += curve
        if cfg["warp"] > 0:      # the same speaker's voice, history included
            a = rng.uniform(1 - cfg["warp"], 1 + cfg["warp"])
            x = augment.freq_warp(x, a)
            if h[adapt.MEL_COUNT] > 0:
                h[:2 * b] = augment.freq_warp(h[:2 * b].reshape(2, b), a).reshape(-1)
        xs[j, :, :b] = augment.spec_augment(x, rng, max_t=cfg["max_t"], max_f=cfg["max_f"])
        xs[j, :, b:] = frames[:, b:]
        hs[j] = h
    labels = np.array([clips[i].label for i in order])
    ys = np.eye(params.NUM_CLASSES, dtype=np.float32)[labels]
    ms = np.stack([masks[clips[i].corpus][clips[i].label] for i in order])
    return xs, hs, ys, ms, weights[order]


def mixup_within_corpus(x, targets, m, rng, prob, alpha=0.3):
    """Mixup whose partner has the same class mask (same corpus, and the same side of a class
    that subsumes an absent one: label_masks); others stay unmixed.
    ``targets``: 2-D arrays (labels, teacher targets) mixed like x."""
    n = len(x)
    perm = rng.permutation(n)
    lam = rng.beta(alpha, alpha, size=n).astype(np.float32)
    lam = np.maximum(lam, 1 - lam)
    lam[(rng.random(n) >= prob) | np.any(m != m[perm], axis=1)] = 1.0
    xm = lam[:, None, None] * x + (1 - lam[:, None, None]) * x[perm]
    return xm.astype(np.float32), [(lam[:, None] * t + (1 - lam[:, None]) * t[perm]).astype(np.float32)
                                   for t in targets]


def mix_across_corpora(xs, ms, order, clips, rng, prob, alpha=0.3):
    """With probability `prob`, an example's log-mel frames mixed (weight >= 1/2 its own) with
    those of an example of the same class from another corpus, its label kept and its class
    mask the two corpora's intersection: one class heard in two corpora's styles at once.
    Pitch and periodicity stay the example's own (relative to its speaker)."""
    b = params.MEL_BANDS
    labels = np.array([clips[i].label for i in order])
    corpora = np.array([clips[i].corpus for i in order])
    pools = {(label, corpus): np.flatnonzero((labels == label) & (corpora != corpus))
             for label, corpus in set(zip(labels, corpora))}
    xs, ms = xs.copy(), ms.copy()
    for j in np.flatnonzero(rng.random(len(order)) < prob):
        partners = pools[labels[j], corpora[j]]
        if not len(partners):
            continue
        k = partners[rng.integers(len(partners))]
        lam = rng.beta(alpha, alpha)
        lam = max(lam, 1 - lam)
        xs[j, :, :b] = lam * xs[j, :, :b] + (1 - lam) * xs[k, :, :b]
        ms[j] = ms[j] * ms[k]
    return xs, ms


def teacher_targets(clips, train_idx, cfg):
    """Targets from the offline teacher (ml/teacher.py) for the training clips: the
    Whisper embeddings, centred per speaker and standardised, and out-of-fold class
    probabilities of a logistic regression on them (grouped by speaker, so no clip's
    target saw its own label), restricted to its corpus's classes."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import GroupKFold, cross_val_predict

    from ml import teacher
    emb = teacher.load(clips).astype(np.float64)
    speakers = np.array([c.speaker for c in clips])
    for spk in set(speakers[train_idx]):
        sel = speakers == spk
        emb[sel] -= emb[sel].mean(axis=0)
    mu, sd = emb[train_idx].mean(axis=0), emb[train_idx].std(axis=0) + 1e-6
    emb = ((emb - mu) / sd).astype(np.float32)
    probs = np.zeros((len(clips), params.NUM_CLASSES), np.float32)
    if cfg["teacher_kd"] > 0:
        y = np.array([clips[i].label for i in train_idx])
        lr = LogisticRegression(C=0.01, max_iter=2000, class_weight="balanced")
        oof = cross_val_predict(lr, emb[train_idx], y, groups=speakers[train_idx],
                                cv=GroupKFold(5), method="predict_proba")
        p = np.zeros((len(train_idx), params.NUM_CLASSES))
        p[:, np.unique(y)] = oof
        p *= np.stack([data.class_mask(clips, clips[i].corpus) for i in train_idx])
        probs[train_idx] = p / p.sum(axis=1, keepdims=True)
    return emb, probs


def masked(logits, mask):
    """The logits with the classes outside the mask (0) pushed out of any softmax over them."""
    return logits + (mask - 1.0) * 1e9


def masked_cross_entropy(logits, y, mask, weights, label_smoothing):
    """Partial-label softmax cross-entropy: the softmax runs only over the classes of
    the clip's corpus (mask 1); label smoothing spreads over those classes only."""
    import tensorflow as tf
    logp = tf.nn.log_softmax(masked(logits, mask), axis=-1)
    k = tf.reduce_sum(mask, axis=-1, keepdims=True)
    target = y * (1.0 - label_smoothing) + label_smoothing * mask / k
    ce = -tf.reduce_sum(target * tf.where(mask > 0, logp, 0.0), axis=-1)
    return tf.reduce_sum(weights * ce) / tf.reduce_sum(weights)


# Temperature of the cross-corpus contrastive loss: that of supervised contrastive learning's
# usual range for unit-length embeddings.
CONTRAST_TEMPERATURE = 0.2


def cross_corpus_contrast(embedding, label, corpus, temperature=CONTRAST_TEMPERATURE):
    """Supervised contrastive loss whose positives cross corpora: for each example of the batch
    with an example of its class (its label's argmax) from another corpus, the mean over those
    of -log softmax of their cosine similarity against every other example of the batch."""
    import tensorflow as tf
    z = tf.math.l2_normalize(embedding, axis=-1)
    n = tf.shape(z)[0]
    others = 1.0 - tf.eye(n)
    logits = tf.matmul(z, z, transpose_b=True) / temperature - 1e9 * (1.0 - others)
    log_prob = tf.nn.log_softmax(logits, axis=-1)
    cls = tf.argmax(label, axis=-1)
    positive = (tf.cast(tf.equal(cls[:, None], cls[None, :]), tf.float32)
                * tf.cast(tf.not_equal(corpus[:, None], corpus[None, :]), tf.float32) * others)
    count = tf.reduce_sum(positive, axis=-1)
    per_anchor = -tf.reduce_sum(positive * tf.where(positive > 0, log_prob, 0.0), axis=-1) / tf.maximum(count, 1.0)
    anchors = tf.cast(count > 0, tf.float32)
    return tf.reduce_sum(per_anchor * anchors) / tf.maximum(tf.reduce_sum(anchors), 1.0)


def distillation_target(teacher_logits, mask):
    """The teachers' mean probabilities over the classes the clip's corpus is asked about
    (the masked loss's softmax, so a class the mask leaves out gets none), one row per
    example; ``teacher_logits``: one (batch, classes) tensor per teacher."""
    import tensorflow as tf
    return tf.add_n([tf.nn.softmax(masked(t, mask)) for t in teacher_logits]) / len(teacher_logits)


def corpus_biased_logits(logits, corrections, corpus):
    """Each example's logits plus its own corpus's correction; `corrections` holds every
    corpus's, (batch, corpora x classes), corpus by corpus."""
    import tensorflow as tf
    per_corpus = tf.reshape(corrections, (-1, len(data.CORPORA), params.NUM_CLASSES))
    return logits + tf.gather(per_corpus, corpus, batch_dims=1)


def train(clips, feats, stats, train_idx, val_idx, cfg, desc="train", progress=True, log=None, teachers=()):
    """Train a classifier on clips[train_idx]; returns (classifier, history, the last
    epoch's weights when the classifier's are averaged over epochs, else None).
    ``teachers``: trained classifiers whose mean probabilities on each training batch, as
    augmented, the labels are blended with (weight ``distil``)."""
    import keras
    import tensorflow as tf

    from ml import model as M
    from ml.features import mel_matrix

    keras.utils.set_random_seed(cfg["seed"])
    rng = np.random.default_rng(cfg["seed"])
    clf = M.build_classifier(channels=tuple(cfg["channels"]), dropout=cfg["dropout"], mixstyle=cfg["mixstyle"],
                             gain_view=cfg["gain_view"], bands=cfg["bands"], separable_from=cfg["separable_from"],
                             instance_norm=cfg["instance_norm"], spectral_dropout=cfg["spectral_dropout"],
                             time_pool=cfg["time_pool"], fine_time=cfg["fine_time"])
    # a corpus repeated k times per epoch: its clips seen in k different augmentations
    epoch_idx = np.concatenate([train_idx] + [
        [i for i in train_idx if clips[i].corpus == c] * (k - 1) for c, k in cfg["corpus_repeat"].items()
    ]).astype(np.int64)
    # the 128-number embedding the training-only heads read (the classifier's head reads it too)
    embedded = clf.get_layer("fc_relu").output
    use_teacher = cfg["teacher_feat"] > 0 or cfg["teacher_kd"] > 0
    if use_teacher:     # an extra head that predicts the teacher's embedding from the student's
        t_emb, t_probs = teacher_targets(clips, train_idx, cfg)
        proj = keras.layers.Dense(t_emb.shape[1], name="teacher_proj")(embedded)
        net = keras.Model(clf.inputs, [clf.output, proj])
    else:
        t_emb = np.zeros((len(clips), 1), np.float32)
        t_probs = np.zeros((len(clips), params.NUM_CLASSES), np.float32)
        net = keras.Model(clf.inputs, [clf.output, clf.output])
    adv_w = cfg["corpus_adversary"]
    corpus_of = np.array([data.CORPORA.index(c.corpus) for c in clips], np.int32)
    net = keras.Model(net.inputs, [*net.outputs, embedded])
    adversary = None
    if adv_w > 0:
        adversary = keras.Sequential([keras.layers.Dense(64, activation="relu"),
                                      keras.layers.Dense(len(data.CORPORA))], name="corpus_adversary")
        adversary.build(embedded.shape)
    affect_w, affect_head = cfg["affect_aux"], None
    if affect_w > 0:
        from ml.affect import COORDINATES
        affect_of = tf.constant(COORDINATES, tf.float32)
        affect_head = keras.layers.Dense(2, name="affect_head")
        affect_head.build(embedded.shape)
    bias_w, bias_head = cfg["corpus_bias"], None
    if bias_w > 0:
        bias_head = keras.layers.Dense(len(data.CORPORA) * params.NUM_CLASSES, name="corpus_bias_head")
        bias_head.build(embedded.shape)
    variables = net.trainable_variables + [v for head in (adversary, affect_head, bias_head) if head
                                           for v in head.trainable_variables]
    steps_per_epoch = int(np.ceil(len(epoch_idx) / cfg["batch"]))
    total = steps_per_epoch * cfg["epochs"]
    warm = steps_per_epoch * min(2, cfg["epochs"] - 1)
    sched = keras.optimizers.schedules.CosineDecay(
        0.0, decay_steps=max(total - warm, 1), warmup_target=cfg["lr"], warmup_steps=warm)
    opt = keras.optimizers.AdamW(sched, weight_decay=cfg["weight_decay"])
    masks = label_masks(clips, train_idx, cfg)
    weights = np.zeros(len(clips), np.float32)
    weights[train_idx] = example_weights(clips, train_idx, cfg)
    members: dict[str, list[int]] = {}
    for i in train_idx:
        members.setdefault(clips[i].speaker, []).append(int(i))
    members = {k: np.array(v) for k, v in members.items()}
    ls = cfg["label_smoothing"]

    kd, feat_w, contrast_w = cfg["teacher_kd"], cfg["teacher_feat"], cfg["class_contrast"]
    distil = cfg["distil"] if teachers else 0.0

    @tf.custom_gradient
    def reverse_gradient(x, scale):
        return tf.identity(x), lambda dy: (-scale * dy, tf.zeros_like(scale))

    @tf.function
    def step(x, h, y, m, w, te, tp, corpus):
        with tf.GradientTape() as tape:
            logits, proj, embedding = net([x, h], training=True)
            target = (1.0 - kd) * y + kd * tp
            if distil > 0:
                taught = distillation_target([t([x, h], training=False) for t in teachers], m)
                target = (1.0 - distil) * target + distil * taught
            loss = masked_cross_entropy(logits, target, m, w, ls) + tf.add_n(net.losses or [0.0])
            if feat_w > 0:
                loss += feat_w * tf.reduce_mean(tf.square(proj - te))
            if adversary is not None:  # DANN's schedule: the reversal grows from 0 to adv_w
                progress = tf.cast(opt.iterations, tf.float32) / total
                scale = adv_w * (2.0 / (1.0 + tf.exp(-10.0 * progress)) - 1.0)
                guess = adversary(reverse_gradient(embedding, scale), training=True)
                loss += tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(corpus, guess))
            if affect_head is not None:  # y: the (mixed-up) one-hot label, so its expected position
                error = tf.reduce_sum(tf.square(affect_head(embedding) - tf.matmul(y, affect_of)), axis=-1)
                loss += affect_w * tf.reduce_sum(w * error) / tf.reduce_sum(w)
            if contrast_w > 0:
                loss += contrast_w * cross_corpus_contrast(embedding, y, corpus)
            if bias_head is not None:
                biased = corpus_biased_logits(logits, bias_head(embedding), corpus)
                loss += bias_w * masked_cross_entropy(biased, target, m, w, ls)
        grads = tape.gradient(loss, variables)
        opt.apply_gradients(zip(grads, variables))
        return loss

    mel_gain = mel_matrix().sum(axis=0)
    history = []
    averaged, n_averaged, unaveraged = None, 0, None
    from tqdm import tqdm
    bar = tqdm(range(cfg["epochs"]), desc=desc, file=sys.stderr, disable=not progress, mininterval=1)
    for ep in bar:
        t0 = time.time()
        order = rng.permutation(epoch_idx)
        xs, hs, ys, ms, ws = make_epoch(feats, stats, order, clips, members, masks, weights, rng,
                                        cfg, mel_gain)
        if cfg["cross_mix"] > 0:
            xs, ms = mix_across_corpora(xs, ms, order, clips, rng, cfg["cross_mix"])
        losses = []
        for b in range(0, len(order), cfg["batch"]):
            sl = slice(b, b + cfg["batch"])
            ob = order[sl]
            xb, (yb, eb, pb) = mixup_within_corpus(xs[sl], [ys[sl], t_emb[ob], t_probs[ob]], ms[sl], rng,
                                                    cfg["mixup_prob"])
            losses.append(float(step(tf.constant(xb), tf.constant(hs[sl]), tf.constant(yb),
                                     tf.constant(ms[sl]), tf.constant(ws[sl]), tf.constant(eb),
                                     tf.constant(pb), tf.constant(corpus_of[ob]))))
        if ep >= cfg["epochs"] - cfg["average_last"]:
            n_averaged += 1
            now = [v.numpy() for v in clf.trainable_variables]
            averaged = now if averaged is None else [a + (w - a) / n_averaged for a, w in zip(averaged, now)]
            if ep == cfg["epochs"] - 1:
                unaveraged = clf.get_weights()
                set_averaged_weights(clf, averaged, [xs, hs], cfg["batch"])
        rec = {"epoch": ep + 1, "loss": round(float(np.mean(losses)), 4),
               "seconds": round(time.time() - t0, 1)}
        if len(val_idx) and (ep % 6 == 5 or ep == cfg["epochs"] - 1):
            lv = score_clips(clf, clips, val_idx, feats["orig"])
            y = np.array([clips[i].label for i in val_idx])
            for mode in ("cold", "adapted"):
                rec[f"val_uar_{mode}"] = round(metrics.summary(y, lv[mode].argmax(1))["uar"], 4)
        history.append(rec)
        bar.set_postfix({k: v for k, v in rec.items() if k != "epoch"})
        if log:
            print(json.dumps(rec), file=log, flush=True)
    return clf, history, unaveraged


def set_averaged_weights(clf, averaged, inputs, batch, batches=100):
    """Stochastic weight averaging: the mean of the weights after each of the last epochs
    (a flatter minimum, which carries better to unseen domains), then every BatchNorm's
    statistics measured anew on training batches, since those of the averaged weights are no
    average of the stored ones: their moving averages become plain means over the batches."""
    import keras
    for v, a in zip(clf.trainable_variables, averaged):
        v.assign(a)
    norms = [layer for layer in clf._flatten_layers() if isinstance(layer, keras.layers.BatchNormalization)]
    for layer in norms:
        layer.moving_mean.assign(np.zeros(layer.moving_mean.shape, np.float32))
        layer.moving_variance.assign(np.ones(layer.moving_variance.shape, np.float32))
    momenta = [layer.momentum for layer in norms]
    for k, b in enumerate(range(0, min(len(inputs[0]), batch * batches), batch)):
        for layer in norms:      # moving = mean of the k + 1 batches seen so far
            layer.momentum = k / (k + 1)
        clf([a[b:b + batch] for a in inputs], training=True)
    for layer, m in zip(norms, momenta):
        layer.momentum = m


def opus_features(clips, idx, bit_rate=24000):
    """Log-mel of the test clips after an Opus round trip (the codec-confound check)."""
    from ml import codec
    return [cache._logmel(codec.round_trip(data.load_waveform(clips[i]), "libopus", bit_rate))
            for i in idx]


def run(clips, feats, stats, cfg, loco=None, fold=None, progress=True, tag=None) -> dict:
    """One protocol unit: train, calibrate on the validation speakers, score the test speakers.
    ``tag`` names a candidate run (``shipped_<tag>``) beside the unit's own."""
    import keras
    p = plan(clips, loco, fold)
    unit = p["name"]
    if tag:
        p["name"] = f"{p['name']}_{tag}"
    p["train"] = share_speakers(clips, p["train"], cfg["speaker_share"])
    tr, va, te = (indices(clips, p[k]) for k in ("train", "validation", "test"))
    out = RUNS / p["name"]
    out.mkdir(parents=True, exist_ok=True)
    made_by = commit()  # the code that trains, not what HEAD is once it is done
    teachers = []
    if cfg["distil"] > 0:  # candidates of the same unit, named by their tags
        from ml import model  # noqa: F401  (registers the layers the saved classifiers hold)
        teachers = [keras.models.load_model(RUNS / f"{unit}_{t}" / "classifier.keras")
                    for t in cfg["distil_from"]]
    t0 = time.time()
    with open(out / "train.log", "w") as log:
        clf, hist, unaveraged = train(clips, feats, stats, tr, va, cfg, desc=p["name"], progress=progress,
                                      log=log, teachers=teachers)
    secs = time.time() - t0
    lv = score_clips(clf, clips, va, feats["orig"])
    yv = np.array([clips[i].label for i in va])
    temperature = calibration.fit_temperature(np.concatenate([lv["cold"], lv["adapted"]]),
                                              np.concatenate([yv, yv]))
    scores = score_clips(clf, clips, te, feats["orig"])
    extra = {}
    if unaveraged is not None:   # the same run without the averaging: a comparison free of seed noise
        averaged = clf.get_weights()
        clf.set_weights(unaveraged)
        last = score_clips(clf, clips, te, feats["orig"])
        clf.set_weights(averaged)
        extra = {"cold_unaveraged": last["cold"], "adapted_unaveraged": last["adapted"]}
    if any(clips[i].corpus == "ravdess" for i in te) and loco is None:
        rav = te[[clips[i].corpus == "ravdess" for i in te]]
        sc = score_clips(clf, clips, rav, dict(zip(map(int, rav), opus_features(clips, rav))))
        extra |= {"opus_idx": rav, "opus_cold": sc["cold"], "opus_adapted": sc["adapted"]}
    clf.save(out / "classifier.keras")
    RUN_REPORTS.mkdir(parents=True, exist_ok=True)
    np.savez(RUN_REPORTS / f"{p['name']}.npz", idx=te, labels=np.array([clips[i].label for i in te]),
             cold=scores["cold"], adapted=scores["adapted"], **extra)
    info = {"name": p["name"], "commit": made_by, "recipe": RECIPE_VERSION, "config": cfg,
            "train_speakers": len(p["train"]), "train_clips": len(tr),
            "validation_speakers": sorted(p["validation"]), "test_speakers": sorted(p["test"]),
            "temperature": temperature, "train_seconds": round(secs, 1), "history": hist,
            "cache": cache.cache_key(clips)}
    (RUN_REPORTS / f"{p['name']}.json").write_text(json.dumps(info, indent=1) + "\n")
    return info


def trained_masks(clips) -> dict[str, np.ndarray]:
    """The classes each leave-one-corpus-out run is trained on: those of the other corpora."""
    return {c: np.max([data.class_mask(clips, o) for o in data.CORPORA if o != c], axis=0)
            for c in data.CORPORA}


def export_shipped(info: dict, clips):
    """The shipped run's classifier as the serving model (.keras and .tflite).  Its
    temperature is fitted on the leave-one-corpus-out test predictions when all three
    runs are done (calibrated for voices from corpora it never heard), else on its
    validation speakers. Without the run's directory, the shipped run's classifier is taken
    from the shipped .keras (re-exporting it with a temperature fitted anew)."""
    import keras

    from ml import model as M
    t = calibration.cross_corpus_temperature(RUN_REPORTS, data.CORPORA, trained_masks(clips))
    info["temperature_validation"] = info["temperature"]
    info["temperature_source"] = "validation speakers" if t is None else "LOCO test predictions"
    if t is not None:
        info["temperature"] = t
    trained = RUNS / info["name"] / "classifier.keras"
    if trained.exists():
        clf = keras.models.load_model(trained)
    elif info["name"] == "shipped":  # a checkout without the run's files: the shipped model's own classifier
        clf = keras.models.load_model(SHIPPED_KERAS).get_layer("emotion_classifier")
    else:
        raise SystemExit(f"{trained} is missing: train the run again")
    serving = M.build_serving(clf, info["temperature"])
    serving.save(SHIPPED_KERAS)
    info["params"] = int(clf.count_params())
    convert_shipped(info)


def convert_shipped(info: dict):
    """ml/emotion_model.tflite from ml/emotion_model.keras (model.to_tflite), its sizes in the
    shipped run's report."""
    import keras

    from ml import model as M
    SHIPPED_TFLITE.write_bytes(M.to_tflite(keras.models.load_model(SHIPPED_KERAS)))
    info.update(keras_bytes=SHIPPED_KERAS.stat().st_size, tflite_bytes=SHIPPED_TFLITE.stat().st_size)
    (ML_DIR / "reports" / "train_shipped.json").write_text(json.dumps(info, indent=1) + "\n")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    data.add_data_argument(ap)
    g = ap.add_mutually_exclusive_group()
    g.add_argument("--loco", choices=data.CORPORA, help="leave this corpus out")
    g.add_argument("--fold", type=int, choices=range(data.NUM_FOLDS), help="RAVDESS CV fold K")
    ap.add_argument("--epochs", type=int, default=DEFAULTS["epochs"])
    ap.add_argument("--seed", type=int, default=DEFAULTS["seed"])
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--jobs", type=int, default=2, help="processes building the feature cache")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=JSON",
                    help="override a training setting, e.g. --set lr=0.002")
    ap.add_argument("--no-progress", action="store_true")
    ap.add_argument("--tag", help="train a candidate: the run is named <unit>_<TAG> and not exported")
    ap.add_argument("--export", metavar="RUN", nargs="?", const="shipped",
                    help="only export a trained run (default: shipped) as the serving model, with "
                         "its temperature from the LOCO folds when they are done")
    ap.add_argument("--convert", action="store_true",
                    help="only convert the shipped ml/emotion_model.keras to ml/emotion_model.tflite again "
                         "(after a change to model.to_tflite); no data needed")
    a = ap.parse_args(argv)
    if a.convert:
        info = json.loads((ML_DIR / "reports" / "train_shipped.json").read_text())
        convert_shipped(info)
        print(json.dumps({k: info[k] for k in ("keras_bytes", "tflite_bytes")}))
        return
    cfg = dict(DEFAULTS, epochs=a.epochs, seed=a.seed)
    for kv in a.set:
        k, v = kv.split("=", 1)
        if k not in cfg:
            ap.error(f"unknown setting {k}")
        try:
            cfg[k] = json.loads(v)
        except json.JSONDecodeError:
            ap.error(f"--set {k}: not a JSON value: {v}")
    clips = data.load_corpora(a.data)
    try:   # before the cache loads: a bad share fails at once
        share_speakers(clips, {c.speaker for c in clips}, cfg["speaker_share"])
    except ValueError as e:
        ap.error(str(e))
    if a.export:
        info = json.loads((RUN_REPORTS / f"{a.export}.json").read_text())
        export_shipped(info, clips)
        print(json.dumps({k: info[k] for k in ("temperature", "temperature_source", "tflite_bytes")}))
        return
    feats = cache.load(clips, jobs=a.jobs, progress=not a.no_progress)
    _set_threads(a.threads)
    stats = clip_stats(feats)
    info = run(clips, feats, stats, cfg, loco=a.loco, fold=a.fold, progress=not a.no_progress, tag=a.tag)
    if a.loco is None and a.fold is None and not a.tag:
        export_shipped(info, clips)
    last = info["history"][-1]
    print(json.dumps({"run": info["name"], "train_seconds": info["train_seconds"],
                      "temperature": info["temperature"],
                      **{k: v for k, v in last.items() if k.startswith("val_")}}))


if __name__ == "__main__":
    main()
