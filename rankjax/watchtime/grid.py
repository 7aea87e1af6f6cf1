"""Command line for one (family, regime, seed) cell of the reproduction: many methods, one process.

  python -m rankjax.watchtime.grid --family=cwm --regime=kuai --seed=0 \\
      --methods=vr,pcr,cwm,cwm@logistic,cwm@dcn --opts=epochs=8,patience=2 --outdir=DIR
"""
import argparse

from rankjax.watchtime import configs
from rankjax.watchtime import experiment

BACKBONE_SUFFIXES = ("fm", "deepfm", "dcn", "autoint")


def config_for(family, regime, seed, opts):
  def make(name):
    method, _, variant = name.partition("@")
    arg = f"method={method},regime={regime},seed={seed}" + (f",{opts}" if opts else "")
    if variant in configs.LINKS:
      arg += f",link={variant}"
    elif variant in BACKBONE_SUFFIXES:
      arg += f",backbone={variant}"
    elif variant:
      raise ValueError(f"unknown method variant {variant!r} in {name!r}")
    return configs.watchtime_config(arg, family=family)
  return make


def main(argv=None):
  p = argparse.ArgumentParser()
  p.add_argument("--family", choices=("cwm", "d2co"), required=True)
  p.add_argument("--regime", required=True)
  p.add_argument("--seed", type=int, required=True)
  p.add_argument("--methods", required=True)
  p.add_argument("--opts", default="")
  p.add_argument("--outdir", required=True)
  a = p.parse_args(argv)
  experiment.run_grid(config_for(a.family, a.regime, a.seed, a.opts), a.methods.split(","),
                      a.outdir)


if __name__ == "__main__":
  main()
