r"""Multi-attribution CVR learning (MAL / NATAL, CIKM'25) and the MAC benchmark models on
``mac_sim`` (mal_multi_attribution.md).

  python -m experiments.mal.main --config=experiments/mal/config.py:runlocal --workdir=/tmp/mal
  python -m experiments.mal.main --config=experiments/mal/config.py:preset=medium,seed=2026 \
      --workdir=workdirs/mal/medium

Arguments: preset (tiny | small | medium), n_users (overrides the preset), manual_dir (real MAC
files: ``train/*.parquet``, ``test/test.parquet``, ``vocabs/*.json``; the simulator is not used),
store_dir (where the prepared copy of them is kept), seed, models
(``+``-separated: base, sharebottom, mmoe, ple, mal_natal, mal_natal_nocart, moae), mains
(``+``-separated main views), label_mode (binary | weighted), lr_from_script (D1).
``runlocal``: 300 simulated users, small batches, mal_natal only.
"""
import ml_collections

from rankjax import configs
from rankjax.experiments_lib import args as args_lib

MODELS = ("base", "sharebottom", "mmoe", "ple", "mal_natal", "mal_natal_nocart", "moae")


def get_config(arg=""):
  a = args_lib.parse_arg(arg) if arg and arg != "runlocal" else {}
  c = ml_collections.ConfigDict()
  c.experiment = "mal"
  c.preset = a.get("preset", "medium")
  c.n_users = int(a.get("n_users", 0))
  c.manual_dir = str(a.get("manual_dir", ""))
  c.store_dir = str(a.get("store_dir", ""))
  c.seed = int(a.get("seed", 2026))
  c.models = str(a.get("models", "+".join(MODELS))).split("+")
  c.mains = str(a.get("mains", "last")).split("+")
  c.label_mode = a.get("label_mode", "binary")
  c.lr = 3e-3
  c.lr_from_script = bool(a.get("lr_from_script", False))
  c.lam = -1.0  # < 0: the reference's lambda for the main view
  c.batch_size = int(a.get("batch_size", 4096))
  c.eval_batch_size = 8192
  # Filled per run from the entries above.
  c.model, c.main, c.cartesian = "mal_natal", "last", True
  if arg == "runlocal":
    c.preset, c.n_users = "tiny", 300
    c.models, c.mains = ["mal_natal"], ["last"]
    c.batch_size = 512
    c.eval_batch_size = 1024
  # XLA:CPU switches of the jitted steps (rankjax/train/cpu_speed.py); "" = XLA's default fusions.
  c.cpu_speed = configs.cpu_speed_config()
  return c
