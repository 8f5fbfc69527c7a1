"""Which stored training runs ml.evaluate reuses (a protocol spans sessions)."""
import json

import numpy as np

from ml import evaluate
from ml.train import DEFAULTS, RECIPE_VERSION


def _store(folder, name, recipe, config):
    (folder / f"{name}.json").write_text(json.dumps({"recipe": recipe, "config": config}))
    np.savez(folder / f"{name}.npz", idx=np.arange(2))


def test_a_run_is_reused_only_with_the_current_recipe_and_settings(tmp_path, monkeypatch):
    monkeypatch.setattr(evaluate, "RUN_REPORTS", tmp_path)
    _store(tmp_path, "same", RECIPE_VERSION, DEFAULTS)
    _store(tmp_path, "other_recipe", "older/1", DEFAULTS)
    _store(tmp_path, "other_setting", RECIPE_VERSION, dict(DEFAULTS, lr=DEFAULTS["lr"] * 2))
    assert evaluate.run_done("same", DEFAULTS)
    assert not evaluate.run_done("other_recipe", DEFAULTS)
    assert not evaluate.run_done("other_setting", DEFAULTS)
    assert not evaluate.run_done("never_trained", DEFAULTS)


def test_a_run_made_before_a_setting_existed_counts_as_made_with_its_default(tmp_path, monkeypatch):
    monkeypatch.setattr(evaluate, "RUN_REPORTS", tmp_path)
    _store(tmp_path, "older", RECIPE_VERSION, {k: v for k, v in DEFAULTS.items() if k != "corpus_adversary"})
    assert evaluate.run_done("older", DEFAULTS)
    assert not evaluate.run_done("older", dict(DEFAULTS, corpus_adversary=0.5))
    # a setting since removed: the run was made with something the recipe no longer has
    _store(tmp_path, "removed", RECIPE_VERSION, dict(DEFAULTS, retired_setting=1))
    assert not evaluate.run_done("removed", DEFAULTS)
