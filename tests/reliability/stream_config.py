"""A seconds-long streaming run on a CSV written by the test (arg: the schema's JSON path)."""
import os

from rankjax import configs


def get_config(arg: str = ""):
  c = configs.base_config()
  c.experiment = "tiny_stream"
  c.tasks = ("y",)
  c.dataset = dict(name="tabular", schema=arg,
                   data_dir=os.path.join(os.path.dirname(arg), "prepared"))
  c.model.name = "dnn"
  c.model.kwargs = {"hidden": (8,)}
  c.optimizer.lr = 3e-2
  c.train.batch_size = 64
  c.train.log_every = 1
  c.train.checkpoint_every = 3
  c.streaming.enabled = True
  c.streaming.num_chunks = 3
  c.streaming.eval_filter = "click"
  return c
