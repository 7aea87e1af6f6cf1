"""Runs the LTV variants of one seed; one JSON per variant in --workdir."""
import argparse

from rankjax.watchtime import configs
from rankjax.watchtime import ltv_experiment

if __name__ == "__main__":
  p = argparse.ArgumentParser()
  p.add_argument("--config", required=True)
  p.add_argument("--workdir", required=True)
  a = p.parse_args()
  c = configs.load_config(a.config)
  for seed in c.seeds:
    c.seed = seed
    ltv_experiment.run(c, a.workdir if len(c.seeds) == 1 else f"{a.workdir}/{seed}")
