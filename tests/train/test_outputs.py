"""Readable outputs: the console table groups by split, plots wrap into a grid with the best step
marked, TensorBoard holds the config as text and the run's hyper-parameters."""
import glob
import os
import struct
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import tiny_config  # pylint: disable=g-import-not-at-top,wrong-import-position

from rankjax.train import plots  # pylint: disable=g-import-not-at-top,wrong-import-position
from rankjax.train import report  # pylint: disable=g-import-not-at-top,wrong-import-position
from rankjax.train import trainer  # pylint: disable=g-import-not-at-top,wrong-import-position


def _tags(logdir):
  """Summary tags of every TensorBoard event file under ``logdir`` (TFRecord framing)."""
  from tensorboardX.proto import event_pb2  # pylint: disable=g-import-not-at-top
  tags = set()
  for path in glob.glob(os.path.join(logdir, "**", "events.out.tfevents.*"), recursive=True):
    data = open(path, "rb").read()
    i = 0
    while i < len(data):
      (n,) = struct.unpack("<Q", data[i:i + 8])
      event = event_pb2.Event.FromString(data[i + 12:i + 12 + n])
      tags |= {v.tag for v in event.summary.value}
      i += 12 + n + 4
  return tags


def test_tensorboard_config_hparams_and_plot(tmp_path):
  c = tiny_config.get_config()
  c.train.num_steps = 20
  results = trainer.train_offline(c, str(tmp_path))
  tags = _tags(tmp_path / "tensorboard")
  assert "config/text_summary" in tags
  assert {"_hparams_/experiment", "_hparams_/session_start_info"} <= tags
  assert "validation/auc/task1" in tags
  assert (tmp_path / "plot.png").stat().st_size > 0
  text = report.table(results)
  blocks = [b.split()[0] for b in text.split("\n\n") if b.strip()]
  assert blocks[:2] == ["validation", "test"]         # one block per split


def test_grid_wraps_many_metrics():
  assert plots.grid(1) == (1, 1)
  assert plots.grid(13) == (4, 4)   # loss + 12 ranking metrics
  assert plots.grid(3) == (1, 3)
