"""Training augmentations on log-mel frames (pure numpy)."""
import numpy as np

from ml import augment, params


def _power(x):
    return np.exp(x.astype(np.float64)) - params.LOG_OFFSET


def test_reverb_only_adds_energy_and_its_tail_decays_faster_at_high_bands():
    x = np.full((80, params.MEL_BANDS), np.log(params.LOG_OFFSET), np.float32)
    x[10:20] = 0.0                                   # a burst, then silence
    out = augment.reverb(x, np.random.default_rng(0), rt60_s=(0.5, 0.5), drr_db=(6.0, 6.0))
    p_in, p_out = _power(x), _power(out)
    assert np.all(p_out >= p_in - 1e-9)
    assert np.all(p_out[:10] < 1e-5)                 # nothing before the sound
    tail = p_out[20:]
    assert np.all(np.diff(tail, axis=0) <= 1e-12)    # after it, only decay
    assert tail[5, 0] > tail[5, -1] > 1e-5           # low bands ring longer
    # 60 dB over the band's RT60: 0.5 s (25 frames) in the lowest band, half in the highest
    assert np.isclose(tail[5, 0] / tail[0, 0], 1e-6 ** (5 / 25), rtol=1e-3)
    assert np.isclose(tail[5, -1] / tail[0, -1], 1e-6 ** (5 / 12.5), rtol=1e-3)


def test_reverb_of_a_steady_sound_sits_at_the_direct_to_reverberant_ratio():
    x = np.zeros((400, params.MEL_BANDS), np.float32)   # power 1 in every band
    out = augment.reverb(x, np.random.default_rng(1), rt60_s=(0.3, 0.3), drr_db=(10.0, 10.0))
    assert np.allclose(_power(out)[-1], 1.1, rtol=1e-4)


def test_mix_across_corpora_mixes_one_class_across_corpora_only():
    """ml.train.mix_across_corpora: a partner of the same class from another corpus; the
    log-mel part mixed with the example's own weighing at least half, pitch kept, the class mask
    the two corpora's intersection; nothing to mix within one corpus."""
    from types import SimpleNamespace

    from ml.train import mix_across_corpora

    clips = [SimpleNamespace(label=0, corpus="a"), SimpleNamespace(label=0, corpus="b"),
             SimpleNamespace(label=1, corpus="a"), SimpleNamespace(label=1, corpus="a")]
    xs = np.stack([np.full((5, params.FRAME_FEATURES), float(i), np.float32) for i in range(4)])
    ms = np.array([[1, 1, 0], [1, 0, 1], [1, 1, 1], [1, 1, 1]], np.float32)
    mixed, masks = mix_across_corpora(xs, ms, np.arange(4), clips, np.random.default_rng(0), prob=1.0)
    b = params.MEL_BANDS
    assert 0.0 < mixed[0, 0, 0] <= 0.5 and 0.5 <= mixed[1, 0, 0] < 1.0   # each toward the other, own half kept
    assert np.array_equal(mixed[:, :, b:], xs[:, :, b:])                 # pitch and periodicity untouched
    assert np.array_equal(mixed[2:], xs[2:])                              # no partner from another corpus
    assert masks.tolist() == [[1, 0, 0], [1, 0, 0], [1, 1, 1], [1, 1, 1]]
    assert np.array_equal(xs[0], np.zeros_like(xs[0]))                    # the inputs are left as they were
