"""Speaker statistics, online adaptation without look-ahead, and the masked loss."""
import json
import subprocess
import sys

import numpy as np
import pytest

from ml import adapt, params

B = params.MEL_BANDS


def frames(n, mean, sd, seed=0, f0=150.0, periodicity=0.9):
    """n frames of speech: log-mel ~ N(mean, sd), log F0 around f0 Hz, periodic."""
    rng = np.random.default_rng(seed)
    x = np.empty((n, params.FRAME_FEATURES), np.float32)
    x[:, :B] = rng.normal(mean, sd, size=(n, B))
    x[:, params.LOG_F0] = np.log(f0) + rng.normal(0, 0.1, n)
    x[:, params.PERIODICITY] = periodicity
    return x


def silence(n):
    x = np.zeros((n, params.FRAME_FEATURES), np.float32)
    x[:, :B] = np.log(params.LOG_OFFSET)
    return x


def test_frame_stats_keep_only_speech_frames_and_pitch_of_voiced_ones():
    voiced, unvoiced = frames(50, 0.0, 0.5), frames(20, 0.0, 0.5, seed=1, f0=390, periodicity=0.2)
    x = np.concatenate([voiced, unvoiced, silence(30)])
    s = adapt.frame_stats(x)
    assert s[adapt.MEL_COUNT] == 70 and s[adapt.F0_COUNT] == 50
    np.testing.assert_allclose(s[:B], x[:70, :B].mean(axis=0), atol=1e-5)
    np.testing.assert_allclose(s[B:2 * B], x[:70, :B].var(axis=0), atol=1e-4)
    assert s[adapt.F0_MEAN] == pytest.approx(voiced[:, params.LOG_F0].mean(), abs=1e-5)
    assert s[adapt.F0_VAR] == pytest.approx(voiced[:, params.LOG_F0].var(), abs=1e-5)


def test_merge_equals_pooled_statistics():
    a, b = frames(40, 1.0, 1.0, seed=1, f0=120), frames(70, -2.0, 1.5, seed=2, f0=220)
    b[:10, params.PERIODICITY] = 0.1        # unvoiced: in the spectrum's statistics, not the pitch's
    merged = adapt.merge(adapt.frame_stats(a), adapt.frame_stats(b))
    both = np.concatenate([a, b])
    np.testing.assert_allclose(merged[:B], both[:, :B].mean(axis=0), atol=1e-4)
    np.testing.assert_allclose(merged[B:2 * B], both[:, :B].var(axis=0), atol=1e-3)
    assert merged[adapt.MEL_COUNT] == 110 and merged[adapt.F0_COUNT] == 100
    f0 = np.concatenate([a[:, params.LOG_F0], b[10:, params.LOG_F0]])
    assert merged[adapt.F0_MEAN] == pytest.approx(f0.mean(), abs=1e-4)
    assert merged[adapt.F0_VAR] == pytest.approx(f0.var(), abs=1e-4)
    assert np.array_equal(adapt.merge(adapt.empty(), adapt.frame_stats(a)), adapt.frame_stats(a))
    assert np.array_equal(adapt.merge(adapt.frame_stats(a), adapt.empty()), adapt.frame_stats(a))


def test_history_is_capped_so_it_follows_a_changing_voice():
    h = adapt.empty()
    old = adapt.frame_stats(frames(100, 0.0, 1.0, f0=120))
    for _ in range(int(adapt.MAX_FRAMES / 100) + 50):
        h = adapt.merge(h, old)
    assert h[adapt.MEL_COUNT] == adapt.MAX_FRAMES and h[adapt.F0_COUNT] == adapt.MAX_FRAMES
    new = adapt.frame_stats(frames(100, 3.0, 1.0, seed=3, f0=240))
    for _ in range(int(adapt.MAX_FRAMES / 100)):
        h = adapt.merge(h, new)
    assert h[:B].mean() > 1.5          # the newer voice dominates
    assert np.exp(h[adapt.F0_MEAN]) > 180


@pytest.mark.parametrize("bad", [np.zeros(5), np.full(adapt.STATS_SIZE, np.inf), "x",
                                 np.concatenate([np.zeros(B), -np.ones(B), [1.0, 5.0, 0.1, 1.0]]),
                                 np.concatenate([np.zeros(2 * B), [1.0, 5.0, -0.1, 1.0]]),
                                 np.concatenate([np.zeros(2 * B), [1.0, 5.0, 0.1, -1.0]])])
def test_invalid_statistics_are_refused(bad):
    assert not adapt.valid(bad)
    assert adapt.valid(adapt.empty())


def test_online_histories_use_only_earlier_clips():
    """No look-ahead: a clip's history comes from the clips before it in the speaker's
    order, never from itself or later ones (changing a later clip changes nothing)."""
    from pathlib import Path

    from ml.data import Clip
    from ml.train import online_histories
    clips = [Clip(Path(f"/x/{i}.wav"), "nemo", "nemo_A" if i < 4 else "nemo_B", 0, "f") for i in range(6)]
    idx = np.arange(6)
    stats = {i: [adapt.frame_stats(frames(30, float(i), 1.0, seed=i))] for i in idx}
    h = online_histories(clips, idx, stats)
    order_a = sorted(range(4), key=lambda i: h[i][adapt.MEL_COUNT])
    assert h[order_a[0]][adapt.MEL_COUNT] == 0          # the first clip is cold
    assert [h[i][adapt.MEL_COUNT] for i in order_a] == [0, 30, 60, 90]
    for k, i in enumerate(order_a):                     # history = pooled earlier clips
        if k:
            want = adapt.merge_all(stats[j][0] for j in order_a[:k])
            np.testing.assert_allclose(h[i], want, atol=1e-4)
    changed = dict(stats)
    changed[order_a[-1]] = [adapt.frame_stats(frames(30, 9.0, 1.0, seed=9))]
    h2 = online_histories(clips, idx, changed)
    for i in range(6):
        np.testing.assert_allclose(h[i], h2[i])         # the last clip influences no one


def test_predict_adapt_scores_a_file_without_itself_or_later_files(tmp_path):
    """ml.predict --adapt: the first file is scored cold, and a file's score does not
    change when later files change."""
    import soundfile as sf
    rng = np.random.default_rng(0)

    def tone(f0, seed):
        """A voiced sound with breath across the spectrum, rising and falling as syllables do (a
        steady sound adds nothing to a history: adapt.STEADY_BELOW)."""
        t = np.arange(2 * params.SAMPLE_RATE) / params.SAMPLE_RATE
        breath = 0.3 * np.random.default_rng(seed).standard_normal(len(t))
        x = (sum(np.sin(2 * np.pi * k * f0 * t) / k for k in range(1, 8)) + breath) * (
            0.1 + 0.9 * np.abs(np.sin(2 * np.pi * 2.5 * t)))
        return 0.2 * x / np.abs(x).max()

    paths = []
    for i, f0 in enumerate((120, 180, 240, 300)):
        p = tmp_path / f"{i}.wav"
        sf.write(p, tone(f0 + rng.uniform(-5, 5), i).astype(np.float32), params.SAMPLE_RATE)
        paths.append(str(p))

    def run(*args):
        out = subprocess.run([sys.executable, "-m", "ml.predict", "--json", *args], capture_output=True,
                             text=True, timeout=120)
        assert out.returncode == 0, out.stderr[-2000:]
        return [json.loads(line) for line in out.stdout.splitlines()]

    cold = run(*paths)
    adapted = run("--adapt", *paths)
    reordered_tail = run("--adapt", paths[0], paths[1], paths[3], paths[2])
    assert adapted[0]["probabilities"] == cold[0]["probabilities"]
    assert adapted[2]["probabilities"] != cold[2]["probabilities"]
    assert reordered_tail[:2] == adapted[:2]


def test_masked_loss_ignores_classes_the_corpus_lacks():
    tf = pytest.importorskip("tensorflow")
    from ml.train import masked_cross_entropy
    mask = np.ones((1, params.NUM_CLASSES), np.float32)
    mask[0, [params.CLASSES.index("calm"), params.CLASSES.index("disgust")]] = 0
    y = np.eye(params.NUM_CLASSES, dtype=np.float32)[[params.CLASSES.index("neutral")]]
    base = np.zeros((1, params.NUM_CLASSES), np.float32)
    w = np.ones(1, np.float32)
    loss = lambda z: float(masked_cross_entropy(tf.constant(z), y, mask, w, 0.0))  # noqa: E731
    raised = base.copy()
    raised[0, params.CLASSES.index("calm")] = 10.0       # a class this corpus lacks
    assert loss(raised) == pytest.approx(loss(base), abs=1e-5)
    assert loss(base) == pytest.approx(np.log(6), abs=1e-5)   # uniform over its 6 classes
    wrong = base.copy()
    wrong[0, params.CLASSES.index("sad")] = 10.0          # a class it has: penalised
    assert loss(wrong) > loss(base) + 5
    # gradients never push a masked class down
    z = tf.Variable(base)
    with tf.GradientTape() as tape:
        v = masked_cross_entropy(z, y, mask, w, 0.1)
    g = tape.gradient(v, z).numpy()[0]
    assert g[params.CLASSES.index("calm")] == 0 and g[params.CLASSES.index("disgust")] == 0


def test_cross_corpus_contrast_pulls_a_class_together_across_corpora_only():
    """Its positives are clips of the same class from another corpus: an embedding that puts a
    class's clips of two corpora together scores lower than one that puts each corpus's clips
    together; same-corpus pairs and examples without a positive add nothing."""
    tf = pytest.importorskip("tensorflow")
    from ml.train import CONTRAST_TEMPERATURE, cross_corpus_contrast
    sad, angry = params.CLASSES.index("sad"), params.CLASSES.index("angry")
    label = tf.constant(np.eye(params.NUM_CLASSES, dtype=np.float32)[[sad, sad, angry, angry]])
    corpus = tf.constant([0, 1, 0, 1])
    by_class = tf.constant([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0], [0.0, 1.0]])
    by_corpus = tf.constant([[1.0, 0.0], [0.0, 1.0], [1.0, 0.0], [0.0, 1.0]])
    loss = lambda embedding, corpora=corpus: float(cross_corpus_contrast(embedding, label, corpora))  # noqa: E731
    assert loss(by_class) < loss(by_corpus)
    # each anchor's one positive is the other corpus's clip of its class, among three others
    expected = -np.log(np.exp(1 / CONTRAST_TEMPERATURE) / (np.exp(1 / CONTRAST_TEMPERATURE) + 2))
    assert loss(by_class) == pytest.approx(expected, rel=1e-5)
    assert loss(by_corpus, tf.constant([0, 0, 0, 0])) == 0.0


def test_corpus_biased_logits_add_each_examples_own_corpus_correction():
    tf = pytest.importorskip("tensorflow")
    from ml import data
    from ml.train import corpus_biased_logits
    n, k = len(data.CORPORA), params.NUM_CLASSES
    corrections = np.arange(2 * n * k, dtype=np.float32).reshape(2, n * k)
    logits = np.ones((2, k), np.float32)
    out = corpus_biased_logits(tf.constant(logits), tf.constant(corrections), tf.constant([n - 1, 0])).numpy()
    np.testing.assert_array_equal(out[0], 1 + corrections[0, (n - 1) * k:])
    np.testing.assert_array_equal(out[1], 1 + corrections[1, :k])


def test_subsumed_class_is_asked_about_except_for_the_class_that_subsumes_it():
    from ml import data
    from ml.train import DEFAULTS, label_masks
    clips = [data.Clip(None, corpus, f"{corpus}_a", params.CLASSES.index(label), "")
             for corpus, labels in (("ravdess", params.CLASSES),
                                    ("nemo", ("neutral", "happy", "sad", "angry", "fearful", "surprised")),
                                    ("ased", ("neutral", "happy", "sad", "angry", "fearful")))
             for label in labels]
    calm, neutral, sad = (params.CLASSES.index(c) for c in ("calm", "neutral", "sad"))
    everyone = np.arange(len(clips))
    plain = label_masks(clips, everyone, dict(DEFAULTS, subsumed_by={}))
    assert all((m == data.class_mask(clips, c)).all() for c, m in plain.items())   # recipe 4
    masks = label_masks(clips, everyone, DEFAULTS)
    assert masks["nemo"][sad, calm] == 1 and masks["ased"][sad, calm] == 1    # a sad clip is not calm
    assert masks["nemo"][neutral, calm] == 0                                  # a neutral one may be
    disgust, angry = params.CLASSES.index("disgust"), params.CLASSES.index("angry")
    assert masks["nemo"][sad, disgust] == 1 and masks["nemo"][angry, disgust] == 0
    assert (masks["nemo"][sad] - plain["nemo"][sad]).sum() == 2               # calm and disgust only
    assert (masks["ravdess"] == plain["ravdess"]).all()
    no_calm = np.array([i for i, c in enumerate(clips) if c.corpus != "ravdess"])
    masks = label_masks(clips, no_calm, DEFAULTS)
    assert all((m == plain[c]).all() for c, m in masks.items())     # calm untrained: never asked
    # a class may be subsumed by several: surprised by happy or fearful, disgust by angry
    happy, fearful, surprised = (params.CLASSES.index(c) for c in ("happy", "fearful", "surprised"))
    masks = label_masks(clips, everyone, dict(DEFAULTS, subsumed_by={"surprised": ["happy", "fearful"],
                                                                      "disgust": "angry"}))
    assert masks["ased"][sad, surprised] == 1 and masks["ased"][angry, surprised] == 1
    assert masks["ased"][happy, surprised] == 0 and masks["ased"][fearful, surprised] == 0
    assert masks["nemo"][sad, disgust] == 1 and masks["nemo"][angry, disgust] == 0
    assert (masks["nemo"][:, surprised] == plain["nemo"][:, surprised]).all()   # nEMO has surprised
    assert (masks["nemo"][:, calm] == plain["nemo"][:, calm]).all()             # calm not named here


def test_example_weights_balance_classes_within_a_corpus_and_boost_a_named_class():
    from ml import data
    from ml.train import DEFAULTS, example_weights
    labels = ["neutral"] * 2 + ["sad"] * 6 + ["neutral"] * 3 + ["sad"] * 3
    clips = [data.Clip(None, "ravdess" if i < 8 else "nemo", "s", params.CLASSES.index(label), "")
             for i, label in enumerate(labels)]
    idx = np.arange(len(clips))
    plain = example_weights(clips, idx, dict(DEFAULTS, class_boost={}))
    assert np.isclose(plain[:2].sum(), plain[2:8].sum()) and np.isclose(plain[8:11].sum(), plain[11:].sum())
    assert np.isclose(plain.mean(), 1.0)
    boosted = example_weights(clips, idx, DEFAULTS)
    neutral = np.array([label == "neutral" for label in labels])
    assert np.allclose(boosted[neutral] / boosted[~neutral].mean(), 2 * plain[neutral] / plain[~neutral].mean())
    assert np.isclose(boosted.mean(), 1.0)


@pytest.mark.filterwarnings("ignore:The structure of `inputs`")
def test_averaged_weights_get_batchnorm_statistics_measured_anew():
    pytest.importorskip("tensorflow")
    import keras

    from ml.train import set_averaged_weights
    keras.utils.set_random_seed(0)
    inp = keras.Input((4,))
    net = keras.Model(inp, keras.layers.BatchNormalization()(keras.layers.Dense(3)(inp)))
    bn = net.layers[-1]
    before = [v.numpy() for v in net.trainable_variables]
    other = [w + 1.0 for w in before]
    averaged = [(a + b) / 2 for a, b in zip(before, other)]
    x = np.random.default_rng(0).normal(size=(40, 4)).astype(np.float32)
    set_averaged_weights(net, averaged, [x], batch=8)
    assert all(np.allclose(v.numpy(), a) for v, a in zip(net.trainable_variables, averaged))
    # the moving mean is the plain mean over the 5 batches of the dense layer's batch means
    kernel, bias = averaged[0], averaged[1]
    batch_means = [(x[b:b + 8] @ kernel + bias).mean(axis=0) for b in range(0, 40, 8)]
    assert np.allclose(bn.moving_mean.numpy(), np.mean(batch_means, axis=0), atol=1e-5)
    assert bn.momentum == 0.99


def test_neutral_history_draws_a_speakers_history_from_their_neutral_clips_only():
    """neutral_history (a training candidate): that share of the histories pools the speaker's
    neutral clips alone, never the clip itself; off, the histories are drawn as before."""
    from ml.train import DEFAULTS, sampled_history
    members = np.arange(8)
    neutral = np.array([True, True, True, False, False, False, False, False])
    stats = {"orig": [adapt.frame_stats(frames(30, float(i), 1.0, seed=i)) for i in members]}
    cfg = {**DEFAULTS, "cold_prob": 0.0, "gain_jitter": 0.0}
    neutral_means = {float(stats["orig"][j][0]) for j in (1, 2)}
    pooled = adapt.merge_all(stats["orig"][j] for j in (1, 2))[0]
    for seed in range(20):
        h = sampled_history(0, members, stats, np.random.default_rng(seed), {**cfg, "neutral_history": 1.0}, neutral)
        assert float(h[0]) in neutral_means or np.isclose(h[0], pooled)
    off = [sampled_history(5, members, stats, np.random.default_rng(seed), cfg, neutral)[0] for seed in range(20)]
    assert not {float(v) for v in off} <= neutral_means | {float(pooled)}, "off, any clip may be in a history"


def test_distillation_target_averages_the_teachers_over_the_classes_asked_about():
    tf = pytest.importorskip("tensorflow")
    from ml.train import distillation_target
    k = params.NUM_CLASSES
    rng = np.random.default_rng(0)
    teachers = [rng.normal(size=(3, k)).astype(np.float32) for _ in range(3)]
    mask = np.ones((3, k), np.float32)
    mask[1, :k // 2] = 0.0
    out = distillation_target([tf.constant(t) for t in teachers], tf.constant(mask)).numpy()
    np.testing.assert_allclose(out.sum(axis=1), 1.0, rtol=1e-6)
    assert np.all(out[1, :k // 2] == 0.0)
    expected = np.mean([np.exp(t[1, k // 2:]) / np.exp(t[1, k // 2:]).sum() for t in teachers], axis=0)
    np.testing.assert_allclose(out[1, k // 2:], expected, rtol=1e-5)
    single = distillation_target([tf.constant(teachers[0])], tf.constant(mask)).numpy()
    np.testing.assert_allclose(single[0], np.exp(teachers[0][0]) / np.exp(teachers[0][0]).sum(), rtol=1e-5)


def test_speaker_share_keeps_a_nested_fixed_subset_of_one_corpus_speakers():
    from ml import data
    from ml.train import share_speakers
    clips = [data.Clip(None, corpus, f"{corpus}_{k:02d}", 0, "")
             for corpus, n in (("ravdess", 4), ("ased", 20)) for k in range(n)]
    everyone = {c.speaker for c in clips}
    assert share_speakers(clips, everyone, {}) == everyone
    quarter = share_speakers(clips, everyone, {"ased": 0.25})
    half = share_speakers(clips, everyone, {"ased": 0.5})
    assert {s for s in everyone if s.startswith("ravdess")} <= quarter        # other corpora whole
    assert len(quarter - {s for s in everyone if s.startswith("ravdess")}) == 5
    assert len(half) == 4 + 10 and quarter < half                             # nested
    assert quarter == share_speakers(clips, everyone, {"ased": 0.25})         # fixed, not random
    assert len(share_speakers(clips, everyone, {"ravdess": 0.01})) == 1 + 20  # at least one
    assert share_speakers(clips, everyone, {"ased": 0}) == {s for s in everyone if s.startswith("ravdess")}
    for bad in ({"ased": 1.5}, {"ased": "half"}, {"crema": 0.5}):
        with pytest.raises(ValueError, match="speaker_share"):
            share_speakers(clips, everyone, bad)


def test_train_refuses_a_setting_that_is_not_json_before_loading_anything(tmp_path):
    out = subprocess.run([sys.executable, "-m", "ml.train", "--data", str(tmp_path), "--loco", "nemo",
                          "--set", "speaker_share={ased: 0.5}"], capture_output=True, text=True, timeout=120)
    assert out.returncode == 2
    assert "--set speaker_share: not a JSON value" in out.stderr
