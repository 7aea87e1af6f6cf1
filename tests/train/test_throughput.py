"""results.json's examples_per_sec is device time: it must not depend on how often the loop logs
(steps are dispatched asynchronously; an unblocked clock times the host's dispatch only)."""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import tiny_config  # pylint: disable=g-import-not-at-top,wrong-import-position

from rankjax.train import trainer  # pylint: disable=g-import-not-at-top,wrong-import-position


def _eps(tmp_path, log_every):
  c = tiny_config.get_config()
  # A step whose device work dwarfs its dispatch: wide layers on a large batch.
  c.dataset.num_examples = 2048 * 4
  c.model.kwargs = dict(hidden=(512, 512))
  c.train.batch_size = 2048
  c.train.num_steps = 6
  c.train.log_every = log_every
  c.train.eval_every = 10**6
  c.train.checkpoint_every = 0
  c.eval.validation_split = ""
  c.eval.final_splits = ()
  return trainer.train_offline(c, str(tmp_path / f"log{log_every}"))["examples_per_sec"]


def test_examples_per_sec_does_not_depend_on_log_every(tmp_path):
  every_step, once = _eps(tmp_path, 1), _eps(tmp_path, 10**6)
  assert 0.5 < once / every_step < 2.0, (every_step, once)
