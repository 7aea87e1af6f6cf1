"""ReLoop2 on shiftstream_sim: ``python -m experiments.reloop2.main --config=...:runlocal --workdir=DIR``."""
from absl import app
from absl import flags
from ml_collections import config_flags

from rankjax.online import reloop2_pipeline

_CONFIG = config_flags.DEFINE_config_file("config", None, "experiments/reloop2/config.py[:ARG]")
_WORKDIR = flags.DEFINE_string("workdir", None, "output folder (results.json)")


def main(argv):
  del argv
  out = reloop2_pipeline.run(_CONFIG.value, _WORKDIR.value)
  print({k: round(v, 4) for k, v in out["summary"].items() if k.endswith("/auc")})


if __name__ == "__main__":
  flags.mark_flags_as_required(["config", "workdir"])
  app.run(main)
