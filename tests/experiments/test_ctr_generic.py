"""experiments/ctr: any registered backbone on a tabular schema, from the command line only."""
import importlib.util
import os

import pytest

from rankjax.train import trainer

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _config(arg):
  spec = importlib.util.spec_from_file_location(
      "ctr_config", os.path.join(REPO, "experiments", "ctr", "config.py"))
  mod = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(mod)
  return mod.get_config(arg)


def test_model_kwargs_are_overridable_and_tasks_come_from_the_schema():
  c = _config("model=dcnv2")
  assert c.tasks == ("click",) and c.dataset.name == "tabular"
  assert c.model.kwargs.cross_layers == 3 and tuple(c.model.kwargs.hidden) == (256, 128)
  assert c.eval.validation_split == "validation"
  with pytest.raises(ValueError, match="not label columns"):
    _config("tasks=buy")
  with pytest.raises(ValueError, match="unknown config option 'modle'"):
    _config("modle=dnn")


def test_runlocal_trains_on_the_shipped_example(tmp_path, monkeypatch):
  monkeypatch.setenv("RANKJAX_DATA_DIR", str(tmp_path / "prepared"))
  c = _config("runlocal,model=deepfm,epochs=1")
  results = trainer.train_offline(c, str(tmp_path / "run"))
  assert results["metrics"]["test/auc/click"] > 0.55
