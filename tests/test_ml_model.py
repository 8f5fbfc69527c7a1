"""The serving model's conversion to .tflite: two signatures (a second's frames, a window's reading),
the classifier's weights in 8 bits, the front end in float."""
import numpy as np
import pytest

from ml import adapt, params


@pytest.mark.filterwarnings("ignore:The structure of `inputs`")
def test_tflite_halves_compute_the_serving_model_with_a_float_front_end():
    pytest.importorskip("tensorflow")
    import keras
    from ai_edge_litert.interpreter import Interpreter
    from tensorflow.lite.python import schema_py_generated as schema
    from tensorflow.lite.tools import flatbuffer_utils as fb

    from ml import model as M
    keras.utils.set_random_seed(0)
    serving = M.build_serving(M.build_classifier(channels=(8, 8, 16, 32)), temperature=1.5)
    blob = M.to_tflite(serving)
    flat = fb.convert_bytearray_to_object(blob)
    graphs = {g.name.decode(): g for g in flat.subgraphs}
    assert set(graphs) == {params.FRAMES_SIGNATURE, params.CLASSIFY_SIGNATURE}
    # the front end's large constants, which the converter quantizes: mel filters, pitch lags and
    # the DFT's second stage
    front = [t for t in graphs[params.FRAMES_SIGNATURE].tensors
             if flat.buffers[t.buffer].data is not None and np.prod(t.shape) >= 1024]
    assert len(front) == 3 and all(t.type == schema.TensorType.FLOAT32 for t in front)
    assert any(t.type == schema.TensorType.INT8 for t in graphs[params.CLASSIFY_SIGNATURE].tensors)

    rng = np.random.default_rng(0)
    t = np.arange(params.WINDOW_SAMPLES) / params.SAMPLE_RATE
    wave = (0.3 * np.sin(2 * np.pi * 180 * t) * (1 + 0.5 * np.sin(2 * np.pi * 3 * t))
            + 0.02 * rng.standard_normal(t.size)).astype(np.float32)[None]
    history = adapt.empty()[None].astype(np.float32)
    expected_probs, expected_stats = (o.numpy() for o in serving([wave, history]))
    expected_frames = serving.get_layer("frontend")(wave).numpy()[0]
    it = Interpreter(model_content=blob, num_threads=1)
    to_frames, classify = it.get_signature_runner("frames"), it.get_signature_runner("classify")
    # the window's three seconds, a chunk each (the last chunk's last frame lies past the window)
    padded = np.pad(wave[0], (0, 2 * params.SAMPLE_RATE + params.FRAME_CHUNK_SAMPLES - params.WINDOW_SAMPLES))
    frames = np.concatenate([to_frames(waveform=padded[None, c * params.SAMPLE_RATE:][:, :params.FRAME_CHUNK_SAMPLES])
                             ["frames"][0] for c in range(3)])[:params.FRAMES_PER_WINDOW]
    np.testing.assert_allclose(frames, expected_frames, rtol=1e-4, atol=1e-3)
    out = classify(frames=frames[None], speaker_stats=history)
    # The window's statistics come from the float front end alone: equal to float rounding.
    np.testing.assert_allclose(out["window_stats"][0], expected_stats[0], rtol=1e-4, atol=1e-4)
    # 8-bit weights move the probabilities a little (at most 0.009 over 1,200 corpus clips for
    # the shipped model, ml/MODEL_CARD.md); a broken front end moves them by far more.
    np.testing.assert_allclose(out["probabilities"][0], expected_probs[0], atol=0.02)


def test_mixstyle_mixes_styles_in_training_only():
    """MixStyle: at inference the identity; in training (p=1) each example keeps its content
    (its map standardised) and takes a style (per-channel mean and spread) between its own and
    another example's of the batch."""
    tf = pytest.importorskip("tensorflow")
    from ml.model import MixStyle

    tf.random.set_seed(0)
    rng = np.random.default_rng(0)
    scale = np.arange(1, 9, dtype=np.float32).reshape(8, 1, 1, 1)
    x = (rng.standard_normal((8, 12, 6, 3)).astype(np.float32) * scale + 10 * scale)
    layer = MixStyle(p=1.0, alpha=0.1)
    assert np.array_equal(np.asarray(layer(x, training=False)), x)
    out = np.asarray(layer(x, training=True))
    mean, std = x.mean(axis=(1, 2)), x.std(axis=(1, 2))
    new_mean, new_std = out.mean(axis=(1, 2)), out.std(axis=(1, 2))
    # every new style lies between two of the batch's styles, and some moved
    assert np.all((new_mean >= mean.min() - 1e-3) & (new_mean <= mean.max() + 1e-3))
    assert np.all((new_std >= std.min() - 1e-3) & (new_std <= std.max() + 1e-3))
    assert np.abs(new_mean - mean).max() > 1.0
    # the content is kept: standardised maps are the same
    np.testing.assert_allclose(_standardised(out), _standardised(x), atol=1e-3)
    assert np.array_equal(np.asarray(MixStyle(p=0.0)(x, training=True)), x)


def _standardised(maps):
    return (maps - maps.mean(axis=(1, 2), keepdims=True)) / maps.std(axis=(1, 2), keepdims=True)


def test_low_bands_classifier_hears_only_the_lowest_bands_and_reloads(tmp_path):
    pytest.importorskip("tensorflow")
    import keras

    from ml import model as M
    keras.utils.set_random_seed(0)
    clf = M.build_classifier(channels=(8, 8, 16, 32), bands=48)
    rng = np.random.default_rng(0)
    feats = rng.normal(size=(2, params.FRAMES_PER_WINDOW, params.FRAME_FEATURES)).astype(np.float32)
    history = np.stack([adapt.empty()] * 2).astype(np.float32)
    louder_top = feats.copy()
    louder_top[:, :, 48:params.MEL_BANDS] += 3.0 * rng.normal(size=(2, params.FRAMES_PER_WINDOW, 16))
    views = keras.Model(clf.inputs, clf.get_layer("views").output)
    assert views([feats, history]).shape[2] == 48
    # the top bands still count in the normalisation of the lowest ones (the loudest frame, the speech frames)
    assert not np.allclose(views([feats, history]), views([louder_top, history]))
    clf.save(tmp_path / "clf.keras")
    again = keras.saving.load_model(tmp_path / "clf.keras")
    np.testing.assert_allclose(again([feats, history]), clf([feats, history]), rtol=1e-5, atol=1e-5)


def test_separable_classifier_filters_each_channel_from_the_block_asked_and_reloads(tmp_path):
    pytest.importorskip("tensorflow")
    import keras

    from ml import model as M
    keras.utils.set_random_seed(0)
    plain, clf, late = M.build_classifier(), M.build_classifier(separable_from=2), M.build_classifier(separable_from=3)

    def kinds(model):
        return [type(model.get_layer(f"b{i}_conv")).__name__ for i in range(1, 5)]

    assert kinds(plain) == ["Conv2D"] * 4
    assert kinds(clf) == ["Conv2D", "SeparableConv2D", "SeparableConv2D", "SeparableConv2D"]
    assert kinds(late) == ["Conv2D", "Conv2D", "SeparableConv2D", "SeparableConv2D"]
    assert clf.count_params() < late.count_params() < plain.count_params()
    rng = np.random.default_rng(0)
    feats = rng.normal(size=(2, params.FRAMES_PER_WINDOW, params.FRAME_FEATURES)).astype(np.float32)
    history = np.stack([adapt.empty()] * 2).astype(np.float32)
    clf.save(tmp_path / "clf.keras")
    again = keras.saving.load_model(tmp_path / "clf.keras")
    np.testing.assert_allclose(again([feats, history]), clf([feats, history]), rtol=1e-5, atol=1e-5)


@pytest.mark.filterwarnings("ignore:The structure of `inputs`")
def test_the_shipped_model_re_exported_without_its_run_files_keeps_its_weights(tmp_path, monkeypatch):
    """`python -m ml.train --export` in a checkout without ml/runs/shipped takes the classifier
    from the shipped .keras: only the temperature changes, so each probability becomes the old one
    to the power T_old / T_new, renormalised."""
    pytest.importorskip("tensorflow")
    import json
    import shutil

    from ml import train
    from ml.inference import EmotionRecognizer

    shipped = EmotionRecognizer.load(train.SHIPPED_TFLITE)
    old_t = json.loads((train.ML_DIR / "reports" / "train_shipped.json").read_text())["temperature"]
    shutil.copy(train.SHIPPED_KERAS, tmp_path / "emotion_model.keras")
    (tmp_path / "reports").mkdir()
    for name, value in (("SHIPPED_KERAS", tmp_path / "emotion_model.keras"),
                        ("SHIPPED_TFLITE", tmp_path / "emotion_model.tflite"), ("ML_DIR", tmp_path),
                        ("RUNS", tmp_path / "runs"), ("RUN_REPORTS", tmp_path / "no-runs")):
        monkeypatch.setattr(train, name, value)
    info = {"name": "shipped", "temperature": 2.5}  # no LOCO runs here: the run's own temperature stays
    train.export_shipped(info, clips=[])
    assert json.loads((tmp_path / "reports" / "train_shipped.json").read_text())["temperature"] == 2.5
    exported = EmotionRecognizer.load(tmp_path / "emotion_model.tflite")
    rng = np.random.default_rng(3)
    windows = [rng.normal(0, 0.1, params.WINDOW_SAMPLES).astype(np.float32) * np.hanning(params.WINDOW_SAMPLES)
               .astype(np.float32) for _ in range(3)]
    before, after = shipped.probabilities(windows), exported.probabilities(windows)
    expected = before ** (old_t / 2.5)
    expected /= expected.sum(axis=1, keepdims=True)
    # Converting again rounds a little differently on another CPU (TensorFlow's constant folding
    # before the 8-bit weights: up to 4e-4 on an Intel host with AVX-512 at the same temperature).
    assert after == pytest.approx(expected, abs=1e-3)
    assert not np.allclose(after, before, atol=1e-2)
    with pytest.raises(SystemExit, match="missing"):
        train.export_shipped({"name": "loco_nemo", "temperature": 1.0}, clips=[])


def test_ibn_blocks_normalise_half_their_channels_per_example_and_reload(tmp_path):
    pytest.importorskip("tensorflow")
    import keras

    from ml import model as M
    keras.utils.set_random_seed(0)
    clf = M.build_classifier(instance_norm=2)
    names = {layer.name for layer in clf.layers}
    assert {"b1_in", "b2_in"} <= names and "b3_in" not in names
    assert "b1_in" not in {layer.name for layer in M.build_classifier().layers}
    rng = np.random.default_rng(0)
    feats = rng.normal(size=(2, params.FRAMES_PER_WINDOW, params.FRAME_FEATURES)).astype(np.float32)
    history = np.stack([adapt.empty()] * 2).astype(np.float32)
    # each example's instance-normalised channels: mean 0 and variance 1 over time and frequency
    # (a little under 1 where a channel's own variance is near the layer's epsilon, 1e-3)
    half = keras.Model(clf.inputs, clf.get_layer("b1_in").output)([feats, history]).numpy()
    assert half.shape[-1] == 8
    np.testing.assert_allclose(half.mean(axis=(1, 2)), 0, atol=1e-4)
    assert np.all((half.var(axis=(1, 2)) > 0.95) & (half.var(axis=(1, 2)) < 1 + 1e-4))
    clf.save(tmp_path / "clf.keras")
    again = keras.saving.load_model(tmp_path / "clf.keras")
    np.testing.assert_allclose(again([feats, history]), clf([feats, history]), rtol=1e-5, atol=1e-5)


def test_spectral_dropout_drops_the_spectral_summary_of_whole_examples_in_training_only():
    """spectral_dropout: in training, a share of the examples lose the spectral branch's summary
    whole (and are classified from prosody alone), the rest keep it scaled up; at inference it
    is the identity, and without the setting the layer is not in the network."""
    pytest.importorskip("tensorflow")
    import keras

    from ml import model as M
    keras.utils.set_random_seed(0)
    assert "spectral_drop" not in [layer.name for layer in M.build_classifier(n_frames=50).layers]
    clf = M.build_classifier(n_frames=50, spectral_dropout=0.5)
    pooled = keras.Model(clf.inputs, clf.get_layer("att_pool").output)
    dropped = keras.Model(clf.inputs, clf.get_layer("spectral_drop").output)
    rng = np.random.default_rng(0)
    x = [rng.standard_normal((64, 50, params.FRAME_FEATURES)).astype(np.float32),
         np.zeros((64, adapt.STATS_SIZE), np.float32)]
    kept = np.asarray(pooled(x, training=False))
    np.testing.assert_allclose(np.asarray(dropped(x, training=False)), kept, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(np.asarray(clf(x, training=False)), np.asarray(clf(x, training=False)))
    # in training mode BatchNorm uses the batch's statistics: compare against the pooled output
    # in the same mode, with the same random draws only in the dropout
    base = np.asarray(pooled(x, training=True))
    out = np.asarray(dropped(x, training=True))
    zero = np.all(out == 0, axis=1)
    assert 16 <= zero.sum() <= 48
    np.testing.assert_allclose(out[~zero], 2.0 * base[~zero], rtol=1e-4, atol=1e-5)


def test_time_pool_averages_the_cnn_input_in_time_and_halves_the_frames_it_convolves():
    """time_pool 2: the CNN sees each pair of frames averaged (the views' mean of frames 2t and
    2t + 1), so each block convolves half the frames; the same weights count, any length serves."""
    pytest.importorskip("tensorflow")
    import keras

    from ml import model as M
    keras.utils.set_random_seed(0)
    plain, pooled = M.build_classifier(), M.build_classifier(time_pool=2)
    assert "time_pool" not in [layer.name for layer in plain.layers]
    assert pooled.count_params() == plain.count_params()
    rng = np.random.default_rng(0)
    x = [rng.normal(size=(2, params.FRAMES_PER_WINDOW, params.FRAME_FEATURES)).astype(np.float32),
         np.stack([adapt.empty()] * 2).astype(np.float32)]
    views = np.asarray(keras.Model(pooled.inputs, pooled.get_layer("views").output)(x))
    averaged = np.asarray(keras.Model(pooled.inputs, pooled.get_layer("time_pool").output)(x))
    t = params.FRAMES_PER_WINDOW // 2
    np.testing.assert_allclose(averaged, (views[:, 0:2 * t:2] + views[:, 1:2 * t:2]) / 2, rtol=1e-5, atol=1e-6)
    frames_in = {name: keras.Model(m.inputs, m.get_layer("b2_conv").input)(x).shape[1]
                 for name, m in (("plain", plain), ("pooled", pooled))}
    assert frames_in == {"plain": params.FRAMES_PER_WINDOW // 2, "pooled": params.FRAMES_PER_WINDOW // 4}
    assert pooled(x).shape == (2, params.NUM_CLASSES)


def test_fine_time_keeps_the_first_blocks_time_steps_and_doubles_those_the_next_convolves():
    pytest.importorskip("tensorflow")
    import keras

    from ml import model as M
    plain, fine = M.build_classifier(), M.build_classifier(fine_time=1)
    assert fine.count_params() == plain.count_params()
    x = [np.zeros((1, params.FRAMES_PER_WINDOW, params.FRAME_FEATURES), np.float32),
         adapt.empty()[None].astype(np.float32)]
    shapes = {name: keras.Model(m.inputs, m.get_layer("b2_conv").input)(x).shape[1:3]
              for name, m in (("plain", plain), ("fine", fine))}
    assert shapes == {"plain": (params.FRAMES_PER_WINDOW // 2, params.MEL_BANDS // 2),
                      "fine": (params.FRAMES_PER_WINDOW, params.MEL_BANDS // 2)}
    assert fine(x).shape == (1, params.NUM_CLASSES)
