"""Runs one NetCVR method on one data/model seed pair; see config.py for the command lines."""
from absl import app
from absl import flags
from ml_collections import config_flags

from rankjax.delayed import benchmark

_CONFIG = config_flags.DEFINE_config_file("config", None, "experiments/tesla/config.py[:options]")
_WORKDIR = flags.DEFINE_string("workdir", None, "Output root (resumed per method and seed).")
flags.mark_flags_as_required(["config", "workdir"])


def main(argv):
  del argv
  import os  # pylint: disable=g-import-not-at-top
  import jax  # pylint: disable=g-import-not-at-top
  # Cells of a sweep are separate processes; the pretraining/aux/predict steps they share (and the
  # same method on other seeds) then compile once (a step took ~3 min to compile here under load).
  jax.config.update("jax_compilation_cache_dir", os.path.join(_WORKDIR.value, "jax_cache"))
  jax.config.update("jax_persistent_cache_min_compile_time_secs", 1.0)
  s = benchmark.run(_CONFIG.value, _WORKDIR.value)
  print(" ".join(f"{k}={s[k]:.4f}" for k in ("CVR/AUC", "NetCVR/AUC", "NetCVR/PRAUC", "NetCVR/NLL")))


if __name__ == "__main__":
  app.run(main)
