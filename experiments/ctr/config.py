r"""Any registered ranking backbone on any tabular data set described by a schema (docs/data.md).

  python -m rankjax.main --config=experiments/ctr/config.py:runlocal --workdir=/tmp/ctr_smoke
  python -m rankjax.main --config=experiments/ctr/config.py:schema=my_schema.yaml,model=dcnv2 \
      --workdir=/tmp/my_ctr --config.model.kwargs.cross_layers=2 --config.optimizer.lr=1e-3

Options (``key=value`` after the colon): schema (a YAML/JSON schema; default: the shipped
example experiments/ctr/example/schema.yaml), model (any model of rankjax.models.registry that
reads a FeatureSpec: dnn, dcnv2, deepfm, dlrm, mmoe, ...), tasks (label columns joined by '+';
default: every label of the schema), epochs, batch_size, lr, seed, runlocal. Every keyword of the
model is a key of ``config.model.kwargs`` at its default, so each can be overridden from the
command line. Validation and early stopping use the schema's ``validation`` split when it has one.
"""
import dataclasses
import os

from rankjax import configs
from rankjax.experiments_lib import args as args_lib

EXAMPLE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "example", "schema.yaml")
OPTIONS = dict(runlocal=False, schema=EXAMPLE, model="dnn", tasks=None, epochs=None,
               batch_size=None, lr=None, seed=0)
# Model fields filled by the trainer, not by the config.
_BUILT_IN = ("spec", "tasks", "parent", "name")


def _splits(schema: dict) -> list:
  if isinstance(schema["files"], dict):
    return list(schema["files"])
  return list((schema.get("split") or {}).get("names", ["train", "validation", "test"]))


def model_kwargs(name: str) -> dict:
  """The model's keyword defaults (so that ``--config.model.kwargs.<key>`` can override them)."""
  from rankjax.models import registry  # pylint: disable=g-import-not-at-top
  out = {}
  for f in dataclasses.fields(registry.get(name)):
    if f.name in _BUILT_IN or f.default is dataclasses.MISSING or not f.init:
      continue
    out[f.name] = tuple(f.default) if isinstance(f.default, list) else f.default
  return out


def get_config(arg=""):
  from rankjax.data import tabular  # pylint: disable=g-import-not-at-top
  opts, extra = args_lib.resolve(arg, OPTIONS)
  if extra:
    raise ValueError(f"unknown options {sorted(extra)}")
  schema_path = os.path.abspath(str(opts["schema"]))
  schema = tabular.load_schema(schema_path)
  labels = [c for c, s in schema["columns"].items() if s.get("kind") == "label"]
  tasks = tuple(str(opts["tasks"]).split("+")) if opts["tasks"] else tuple(labels)
  missing = [t for t in tasks if t not in labels]
  if missing or not tasks:
    raise ValueError(f"tasks {list(tasks)}: {missing or 'none'} not label columns of "
                     f"{schema_path} (labels: {labels})")
  splits = _splits(schema)
  runlocal = bool(opts["runlocal"])
  c = configs.base_config()
  c.experiment = "ctr"
  c.seed = int(opts["seed"])
  c.tasks = tasks
  c.dataset = dict(name="tabular", schema=schema_path)
  c.model.name = str(opts["model"])
  c.model.kwargs = model_kwargs(c.model.name)
  c.optimizer.lr = float(args_lib.pick(opts, "lr", 3e-3))
  c.train.batch_size = int(args_lib.pick(opts, "batch_size", 256))
  c.train.num_epochs = int(args_lib.pick(opts, "epochs", 2 if runlocal else 10))
  c.train.log_every = 10
  c.train.eval_every_epochs = 1
  c.train.checkpoint_every_epochs = 1
  c.train.early_stopping = dict(metric="auc/mean", mode="max", patience=3)
  c.eval.metrics = ("auc", "logloss")
  # "" = no validation split: then there is no early stopping and the last step is tested.
  c.eval.validation_split = "validation" if "validation" in splits else ""
  c.eval.final_splits = tuple(s for s in ("test",) if s in splits)
  return c
