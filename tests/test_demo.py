"""The demo experiment's runlocal variant trains end to end and learns both tasks."""
import importlib.util
import os

from rankjax.train import trainer

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_demo_runlocal(tmp_path):
  spec = importlib.util.spec_from_file_location(
      "demo_config", os.path.join(REPO, "experiments", "demo", "config.py"))
  mod = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(mod)
  results = trainer.train_offline(mod.get_config("runlocal"), str(tmp_path))
  assert results["metrics"]["test/auc/task1"] > 0.6
  assert results["metrics"]["test/auc/task2"] > 0.6
  assert os.path.exists(tmp_path / "plot.png")
