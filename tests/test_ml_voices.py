"""ml/voices.py: how a run's training voices are named and grouped."""
from ml.voices import setting_of, shares


def run(share):
    return {"config": {"speaker_share": share}}


def test_shares_name_the_training_corpora_and_their_share_of_voices():
    assert shares(run({}), "nemo") == {"ravdess": 1.0, "ased": 1.0}
    assert shares({"config": {}}, "ased") == {"ravdess": 1.0, "nemo": 1.0}       # runs before the setting
    assert shares(run({"ravdess": 0.5, "ased": 0.5}), "nemo") == {"ravdess": 0.5, "ased": 0.5}
    assert shares(run({"nemo": 0}), "ased") == {"ravdess": 1.0}                  # a corpus left out


def test_settings_group_runs_of_the_same_voices_whatever_their_seed():
    assert setting_of({"ravdess": 1.0, "ased": 1.0}) == "RAVDESS + ASED"
    assert setting_of({"ravdess": 0.25, "nemo": 0.25}) == "RAVDESS + nEMO, 0.25 of the voices"
    assert setting_of({"nemo": 1.0}) == "nEMO"
