"""Mistakes that used to pass silently (issue 10, item 4) are errors that say what is valid."""
import os
import sys

import ml_collections
import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import tiny_config  # pylint: disable=g-import-not-at-top,wrong-import-position

from rankjax import metrics  # pylint: disable=g-import-not-at-top,wrong-import-position
from rankjax.data import registry  # pylint: disable=g-import-not-at-top,wrong-import-position
from rankjax.train import trainer  # pylint: disable=g-import-not-at-top,wrong-import-position


@pytest.mark.parametrize("key,value", [("validation_split", "valid"),
                                       ("validation_split", "val"),
                                       ("final_splits", ("tset",))])
def test_missing_split_is_an_error_listing_the_splits(tmp_path, key, value):
  c = tiny_config.get_config()
  c.eval[key] = value
  with pytest.raises(ValueError, match=r"its splits are \['test', 'train', 'validation'\]"):
    trainer.train_offline(c, str(tmp_path))
  assert not os.path.exists(tmp_path / "results.json")


def test_no_validation_is_an_explicit_choice(tmp_path):
  c = tiny_config.get_config()
  c.eval.validation_split = ""
  c.train.num_steps = 4
  results = trainer.train_offline(c, str(tmp_path))
  assert "test/auc/task1" in results["metrics"]
  assert not any(k.startswith("validation/") for k in results["metrics"])


def test_one_validation_name_across_datasets():
  # The sequential datasets called it "valid"; every dataset now names it "validation".
  from rankjax.data.sequences import loo  # pylint: disable=g-import-not-at-top
  assert loo.VALIDATION == "validation"
  assert tiny_config.get_config().eval.validation_split == "validation"


@pytest.mark.parametrize("name", registry.names())
def test_every_loader_rejects_an_unknown_option(name):
  # Checked before any file is read, so this holds for datasets whose files are absent too.
  cfg = ml_collections.ConfigDict({"name": name, "max_lenn": 20})
  with pytest.raises(ValueError, match="max_lenn"):
    registry.load(cfg)


def test_metric_names_do_not_resolve_to_another_metric():
  with pytest.raises(ValueError, match="unknown metric 'acc'"):
    metrics.get("acc")
  # An accepted spelling is the metric's own name, or a documented alias of the same metric.
  for alias, target in metrics._ALIASES.items():  # pylint: disable=protected-access
    assert not target.startswith(alias) or alias + "_" not in target, (alias, target)
