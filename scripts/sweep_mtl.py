r"""Sweep driver of the multi-task experiments: trains every selected run in this one process,
writes experiments/<paper>/results/<run>.json, then table.md and pareto.png.

  python scripts/sweep_mtl.py                                   # the full default grid
  python scripts/sweep_mtl.py --papers=pub --datasets=census --models=mmoe \
      --methods=ew,pcgrad,pub --seeds=0,1,2 --set=epochs=12
  python scripts/sweep_mtl.py --papers=pub,drgrad --report_only  # tables and plots only

The default grid of each paper is ``sweep()`` in experiments/<paper>/config.py; the flags filter
it. A run whose JSON exists is skipped, so rerunning a killed command resumes it. ``--set``
options become part of the run (and of its file name), so e.g. epoch-capped runs never mix with
full-protocol runs in a table row.

Per-method learning rates (issue 15): ``--lrs=1e-4:3e-4:1e-3:3e-3`` trains every selected run at
each lr (same seeds), picks each method's lr on the mean validation early-stopping metric (never
test) and writes experiments/<paper>/lr_selection/{lr_selection.json,lr_selection.md} with the
test metric at the selected lr and update-RMS plots (rankjax/experiments_lib/lr_selection.py).
"""
import sys
import time
from pathlib import Path

from absl import app
from absl import flags

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from rankjax.experiments_lib import args as args_lib  # pylint: disable=g-import-not-at-top,wrong-import-position
from rankjax.experiments_lib import lr_selection  # pylint: disable=g-import-not-at-top,wrong-import-position
from rankjax.experiments_lib import report  # pylint: disable=g-import-not-at-top,wrong-import-position
from rankjax.experiments_lib import sweep  # pylint: disable=g-import-not-at-top,wrong-import-position

PAPERS = ("pub", "drgrad", "ektm")
_PAPERS = flags.DEFINE_list("papers", list(PAPERS), "Experiments to sweep.")
_DATASETS = flags.DEFINE_list("datasets", [], "Keep only these datasets (default: all).")
_MODELS = flags.DEFINE_list("models", [], "Keep only these models.")
_METHODS = flags.DEFINE_list("methods", [], "Keep only these MTO methods / variants.")
_SEEDS = flags.DEFINE_list("seeds", ["0", "1", "2", "3", "4"], "Seeds of every run.")
_CORRS = flags.DEFINE_list("corrs", [], "Keep only these synthetic correlations / cos values.")
_SET = flags.DEFINE_list("set", [], "key=value options added to every run, e.g. epochs=12.")
_RESULTS_ROOT = flags.DEFINE_string("results_root", str(REPO / "experiments"),
                                    "Results go to <results_root>/<paper>/results/.")
_WORKDIR_ROOT = flags.DEFINE_string("workdir_root", str(REPO / "workdirs" / "sweep_mtl"),
                                    "Per-run workdirs (deleted after each run).")
_KEEP = flags.DEFINE_bool("keep_workdirs", False, "Keep each run's workdir (checkpoints, logs).")
_LRS = flags.DEFINE_string("lrs", "", "Learning rates to select from per method on validation, "
                           "e.g. 1e-4:3e-4:1e-3:3e-3 ('' = no selection).")
_DRY_RUN = flags.DEFINE_bool("dry_run", False, "Print the runs and exit.")
_REPORT_ONLY = flags.DEFINE_bool("report_only", False, "Only rebuild table.md and pareto.png (with "
                                  "--lrs: and the lr selection of the cells that finished).")
_JAX_CACHE = flags.DEFINE_string(
    "jax_cache", str(REPO / "workdirs" / "jax_cache"),
    "Persistent XLA compilation cache ('' disables): runs of one shape compile once.")


def _selection() -> sweep.Selection:
  extra = tuple(args_lib.parse_arg(",".join(_SET.value)).items())
  return sweep.Selection(datasets=tuple(_DATASETS.value), models=tuple(_MODELS.value),
                         methods=tuple(_METHODS.value), seeds=tuple(int(s) for s in _SEEDS.value),
                         corrs=tuple(float(c) for c in _CORRS.value), extra=extra)


def main(argv):
  del argv
  sweep.prepare_process(_JAX_CACHE.value, compile_cache=not _REPORT_ONLY.value)
  sel = _selection()
  for paper in _PAPERS.value:
    if paper not in PAPERS:
      raise app.UsageError(f"unknown paper {paper!r}; valid: {list(PAPERS)}")
    module = sweep.load_module(REPO / "experiments" / paper / "config.py")
    results_dir = Path(_RESULTS_ROOT.value) / paper / "results"
    runs = sweep.expand(module.sweep(), sel)
    lrs = lr_selection.parse_lrs(_LRS.value)
    if _DRY_RUN.value:
      sweep.print_plan(paper, lr_selection.with_lrs(runs, lrs) if lrs else runs, results_dir)
      continue
    if lrs and _REPORT_ONLY.value:
      lr_selection.report(runs, lrs, results_dir=results_dir,
                          out_dir=Path(_RESULTS_ROOT.value) / paper / "lr_selection",
                          log=lambda m: print(f"[{paper}] {m}", flush=True))
    elif lrs:
      lr_selection.run(runs, lrs, paper=paper, get_config=module.get_config,
                       results_dir=results_dir, workdir_root=_WORKDIR_ROOT.value,
                       out_dir=Path(_RESULTS_ROOT.value) / paper / "lr_selection",
                       keep_workdirs=_KEEP.value, log=lambda m: print(m, flush=True))
    elif not _REPORT_ONLY.value:
      t0 = time.time()
      sweep.run_grid(runs, paper=paper, get_config=module.get_config, results_dir=results_dir,
                     workdir_root=_WORKDIR_ROOT.value, keep_workdirs=_KEEP.value,
                     log=lambda m: print(m, flush=True))
      print(f"[{paper}] sweep took {time.time() - t0:.0f} s", flush=True)
    out = report.write(results_dir, title=f"{paper} results",
                       pivots=getattr(module, "PIVOTS", ()))
    for k, v in out.items():
      print(f"[{paper}] {k}: {v}", flush=True)


if __name__ == "__main__":
  app.run(main)
