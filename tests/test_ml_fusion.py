"""ml/fusion.py: online per-speaker standardisation, the novelty gate and the pool of two models'
probabilities."""
import numpy as np

from ml.fusion import causal_standardise, novelty, pool, running_means


def test_each_row_is_standardised_by_its_speakers_earlier_rows_and_the_prior():
    x = np.array([[2.0], [4.0], [10.0], [7.0]])
    orders = {"a": [1, 0, 3], "b": [2]}
    out = causal_standardise(x, orders, prior_mean=np.array([1.0]), prior_var=np.array([4.0]), prior_count=2)
    assert np.allclose(out[[1, 2]], [[(4 - 1) / 2], [(10 - 1) / 2]])   # first of a speaker: the prior
    # row 0 comes second for speaker a: the prior's two rows and row 1
    mean = (2 * 1 + 4) / 3
    var = (2 * (4 + 1) + 16) / 3 - mean ** 2
    assert np.allclose(out[0], (2 - mean) / np.sqrt(var))


def test_a_rows_normaliser_never_depends_on_itself_or_later_rows():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(6, 3))
    orders = {"a": [4, 1, 5, 0], "b": [3, 2]}
    prior = dict(prior_mean=np.zeros(3), prior_var=np.ones(3))
    before = causal_standardise(x, orders, **prior)
    changed = x.copy()
    changed[[5, 0, 2]] += 100.0          # the last two of a, the last of b
    after = causal_standardise(changed, orders, **prior)
    assert np.allclose(before[[4, 1, 3]], after[[4, 1, 3]])
    # its own value moves a row's output through the numerator alone
    shift = causal_standardise(x + np.eye(6)[:, [5]], orders, **prior)[5] - before[5]
    mean = x[[4, 1]].sum(0) / 5                                 # prior_count 3: the prior's 3 rows and 2
    var = (3 + (x[[4, 1]] ** 2).sum(0)) / 5 - mean ** 2
    assert np.allclose(shift, 1 / np.sqrt(var))


def test_the_pool_multiplies_the_probabilities_over_the_trained_classes_only():
    trained = np.array([1, 1, 1, 0], float)
    a = np.array([[0.6, 0.2, 0.1, 0.1]])
    b = np.array([[0.2, 0.5, 0.2, 0.1]])
    p = pool(a, b, trained, weight=0.5)
    expected = np.sqrt(a[0, :3] * b[0, :3])
    assert np.allclose(p[0, :3], expected / expected.sum(), atol=1e-6)
    assert p[0, 3] == 0.0 and np.isclose(p.sum(), 1.0)
    assert np.allclose(pool(a, b, trained, weight=1.0)[0, :3], a[0, :3] / a[0, :3].sum(), atol=1e-6)


def test_a_running_mean_is_of_the_speakers_earlier_rows_once_enough_came_before():
    x = np.array([[1.0], [3.0], [5.0], [100.0], [7.0]])
    out = running_means(x, {"a": [2, 0, 4, 1], "b": [3]}, min_seen=2)
    assert np.isnan(out[[2, 0, 3], 0]).all()          # fewer than two before them
    assert out[4, 0] == 3.0 and out[1, 0] == 13 / 3   # (5 + 1) / 2, (5 + 1 + 7) / 3
    later = x.copy()
    later[1] = -50.0                                  # the last row of a: nothing before it moves
    assert np.allclose(running_means(later, {"a": [2, 0, 4, 1], "b": [3]}, min_seen=2)[4], out[4])


def test_novelty_is_the_distance_to_the_nearest_training_voice_from_earlier_clips_only():
    rng = np.random.default_rng(1)
    # three training speakers around 0, 1 and 2 on one feature, four clips each
    train = np.concatenate([c + 0.01 * rng.normal(size=(4, 1)) for c in (0.0, 1.0, 2.0)])
    # a test speaker at 1.0 (like a training voice) and one at 9.0 (unlike any)
    test = np.array([[1.0], [1.0], [1.0], [1.0], [9.0], [9.0], [9.0], [9.0]])
    x = np.concatenate([train, test])
    train_orders = {"s0": [0, 1, 2, 3], "s1": [4, 5, 6, 7], "s2": [8, 9, 10, 11]}
    test_orders = {"near": [12, 13, 14, 15], "far": [16, 17, 18, 19]}
    distance, reference = novelty(x, train_orders, test_orders)
    assert all(np.isnan(distance[i]) for i in (12, 13, 14, 16, 17, 18))   # MIN_SEEN (3) clips first
    assert distance[15] < 0.1 < 5 < distance[19]
    # each training speaker measured against the others: about one step of their spread away
    assert len(reference) == 3 and np.all(reference > 0.5)
    # no look-ahead: a test speaker's last clip does not move its own distance
    x2 = x.copy()
    x2[19] = -40.0
    assert novelty(x2, train_orders, test_orders)[0][19] == distance[19]
