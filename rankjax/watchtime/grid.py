"""Command line for cells of the reproduction: many methods, regimes and seeds in one process
(shared compilations); results in ``<outdir>/<regime>/<seed>/<method>.json``, resumable.

  python -m rankjax.watchtime.grid --family=cwm --regimes=kuai --seeds=0,1,2 \\
      --methods=vr,pcr,cwm,cwm@logistic,cwm@dcn --opts=epochs=8,patience=2 --outdir=DIR
"""
import os
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
  p.add_argument("--regimes", required=True)
  p.add_argument("--seeds", required=True)
  p.add_argument("--methods", required=True)
  p.add_argument("--opts", default="")
  p.add_argument("--outdir", required=True)
  a = p.parse_args(argv)
  for seed in (int(x) for x in a.seeds.split(",")):
    for regime in a.regimes.split(","):
      experiment.run_grid(config_for(a.family, regime, seed, a.opts), a.methods.split(","),
                          os.path.join(a.outdir, regime, str(seed)))


if __name__ == "__main__":
  main()
