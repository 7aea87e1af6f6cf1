"""ALM-MTA and baselines: ``python -m experiments.alm_mta.main --config=...:runlocal --workdir=DIR``."""
from absl import app
from absl import flags
from ml_collections import config_flags

from rankjax.causal import pipeline

_CONFIG = config_flags.DEFINE_config_file("config", None, "experiments/alm_mta/config.py[:ARG]")
_WORKDIR = flags.DEFINE_string("workdir", None, "output folder (results.json)")


def main(argv):
  del argv
  out = pipeline.run(_CONFIG.value, _WORKDIR.value)
  print({k: {m: round(v[m], 4) for m in ("auc", "oracle_auuc", "grouped_auuc") if m in v}
         for k, v in out["rows"].items()})


if __name__ == "__main__":
  flags.mark_flags_as_required(["config", "workdir"])
  app.run(main)
