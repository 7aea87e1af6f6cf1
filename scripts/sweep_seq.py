r"""Sweep driver of the sequential experiments (experiments/rote, cape, fair): trains every selected
run in this one process, writes experiments/<paper>/results/<run>.json (metrics plus the small
validation NDCG@10 curve), then table.md and curves.png. ``cape_ctr`` is CAPE's CTR grid
(experiments/cape/ctr_config.py, results in experiments/cape/ctr_results/, a table of test AUC,
gAUC and log loss with each position variant paired by seed against ``none``).

  python scripts/sweep_seq.py                                       # every paper's default grid
  python scripts/sweep_seq.py --papers=rote --datasets=beauty --seeds=2024,2025,2026 \
      --set=epochs=6,batch_size=128,eval_every_epochs=1
  python scripts/sweep_seq.py --papers=rote,fair --report_only      # tables and plots only
  python scripts/sweep_seq.py --papers=rote --seeds=2024 --set=... --reevaluate  # add new metrics
  python scripts/sweep_seq.py --papers=fair --plugins=baseline,fair --lrs=3e-4:1e-3:3e-3 --set=...
  python scripts/sweep_seq.py --papers=cape_ctr --where=backbone=din,k_eval=1 --seeds=2024,2025,2026

The default grid of each paper is ``sweep()`` in experiments/<paper>/config.py (backbone vs
backbone + plug-in); the flags filter it. A run whose JSON exists is skipped, so rerunning a killed
command resumes it. ``--set`` options become part of the run and of its file name, so capped runs
never mix with full-protocol runs in a table row. Workdirs (checkpoints, metrics.jsonl, plot.png)
stay under workdirs/sweep_seq/ (git-ignored).

``--lrs``: every selected run is trained at each lr (same seeds), each plug-in's lr is picked on
the mean validation NDCG@10 (the early-stopping metric; test is never read for the choice), and
experiments/<paper>/lr_selection/{lr_selection.json,lr_selection.md} give the test metrics at the
selected lr (rankjax/experiments_lib/lr_selection.py, shared with scripts/sweep_mtl.py). With
``--report_only`` the selection is redone from the runs on disk; nothing is trained.
"""
import json
import os
import sys
import time
from pathlib import Path

from absl import app
from absl import flags

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from rankjax.experiments_lib import args as args_lib  # pylint: disable=g-import-not-at-top,wrong-import-position
from rankjax.experiments_lib import ctr_report  # pylint: disable=g-import-not-at-top,wrong-import-position
from rankjax.experiments_lib import lr_selection  # pylint: disable=g-import-not-at-top,wrong-import-position
from rankjax.experiments_lib import ranking_report  # pylint: disable=g-import-not-at-top,wrong-import-position
from rankjax.experiments_lib import seq  # pylint: disable=g-import-not-at-top,wrong-import-position
from rankjax.experiments_lib import sweep  # pylint: disable=g-import-not-at-top,wrong-import-position

PAPERS = ("rote", "cape", "fair", "cape_ctr", "seq_baselines")
TITLES = {"rote": "RoTE: SASRec vs RoTE-SASRec",
          "cape": "CAPE (sequential extension): SASRec vs SASRec + CAPE",
          "fair": "FAIR-A (approximation of arXiv 2512.11254): RPG-lite vs FAIR-A",
          "cape_ctr": "CAPE on Beauty-CTR-LOO (seq_cape.md 5.4): position variants per backbone",
          "seq_baselines": "Sequential baselines (seq_baselines.md): SASRec, SASRec-CE, BERT4Rec, "
                           "TIGER, RPG-lite"}
# paper -> (config, results folder under the results root, validation metric of the curves)
LAYOUT = {"rote": ("rote/config.py", "rote/results", ranking_report.HEADLINE),
          "cape": ("cape/config.py", "cape/results", ranking_report.HEADLINE),
          "fair": ("fair/config.py", "fair/results", ranking_report.HEADLINE),
          "cape_ctr": ("cape/ctr_config.py", "cape/ctr_results", "auc/label"),
          "seq_baselines": ("seq_baselines/config.py", "seq_baselines/results",
                            ranking_report.HEADLINE)}
_PAPERS = flags.DEFINE_list("papers", list(PAPERS), "Experiments to sweep.")
_DATASETS = flags.DEFINE_list("datasets", [], "Keep only these datasets (beauty, toys).")
_PLUGINS = flags.DEFINE_list("plugins", [], "Keep only these plug-ins (default: the grid's).")
_SEEDS = flags.DEFINE_list("seeds", ["2024", "2025", "2026"], "Seeds of every run.")
_SET = flags.DEFINE_list("set", [], "key=value options added to every run, e.g. epochs=6.")
_WHERE = flags.DEFINE_list("where", [], "Keep only the grid cells with these options, key=value "
                           "or key=v1+v2 (e.g. backbone=din,k_eval=1 for cape_ctr); key=- keeps "
                           "the cells without that option.")
_RESULTS_ROOT = flags.DEFINE_string("results_root", str(REPO / "experiments"),
                                    "Results go to <results_root>/<paper>/results/.")
_WORKDIR_ROOT = flags.DEFINE_string("workdir_root", str(REPO / "workdirs" / "sweep_seq"),
                                    "Per-run workdirs (kept: the curves are read from them).")
_LRS = flags.DEFINE_string("lrs", "", "Learning rates to select from per plug-in on validation, "
                           "e.g. 3e-4:1e-3:3e-3 ('' = no selection).")
_DRY_RUN = flags.DEFINE_bool("dry_run", False, "Print the runs and exit.")
_REPORT_ONLY = flags.DEFINE_bool("report_only", False, "Only rebuild table.md and curves.png.")
_EXTEND = flags.DEFINE_bool(
    "extend", False, "Continue a finished run with fewer epochs (same other options) instead of "
    "training from scratch, e.g. --set=epochs=80 after --set=epochs=40.")
_REEVALUATE = flags.DEFINE_bool(
    "reevaluate", False, "Re-run the final evaluation of the selected finished runs from their "
    "kept workdirs and add the metrics their JSON lacks (e.g. the compat mode); no training.")
_JAX_CACHE = flags.DEFINE_string("jax_cache", str(REPO / "workdirs" / "jax_cache"),
                                 "Persistent XLA compilation cache ('' disables).")


def matches(cell, where) -> bool:
  """``where``: ["key=value", "key=v1+v2", ...]; values compared as text. A cell without the
  option matches only the value ``-`` (e.g. ``mask_mode=-`` keeps the cells at the default
  mask mode, which carry no ``mask_mode``)."""
  for item in where:
    key, _, values = item.partition("=")
    if str(cell.get(key, "-")) not in values.split("+"):
      return False
  return True


def check_where(cells, where) -> None:
  """A --where key that no grid cell has is a typo, not an empty filter."""
  for item in where:
    key = item.partition("=")[0]
    if cells and not any(key in c for c in cells):
      options = sorted({k for c in cells for k in c})
      raise app.UsageError(f"--where={item}: no option {key!r} in the grid cells "
                           f"(options: {options})")


def select(cells, module):
  """The grid cells kept by --datasets/--plugins/--where (the plug-in filter may add non-default
  cells)."""
  check_where(cells, _WHERE.value)
  out = []
  for cell in cells:
    if _DATASETS.value and cell.get("dataset") not in _DATASETS.value:
      continue
    if not matches(cell, _WHERE.value):
      continue
    out.append(cell)
  if _PLUGINS.value:
    datasets = list(dict.fromkeys(c["dataset"] for c in out))
    unknown = set(_PLUGINS.value) - set(module.PLUGINS)
    if unknown:
      raise app.UsageError(f"unknown plugins {sorted(unknown)}; valid: {sorted(module.PLUGINS)}")
    out = [dict(dataset=d, plugin=p) for d in datasets for p in _PLUGINS.value]
  return out


def add_curves(paths, workdir_root: Path, paper: str, get_config) -> None:
  """Stores each run's validation curve and steps per epoch in its JSON (once), so tables and
  plots can be rebuilt without the workdirs."""
  metric = LAYOUT[paper][2]
  for path in paths:
    if not path.exists():
      continue
    res = json.loads(path.read_text())
    if res.get("curve"):
      continue
    res["curve"] = ranking_report.validation_curve(workdir_root / paper / path.stem, metric)
    # The CTR configs evaluate once per epoch.
    res["steps_per_epoch"] = (res["train"]["eval_every"] if paper == "cape_ctr"
                              else seq.config_steps_per_epoch(get_config(res["arg"])))
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(res, indent=1, sort_keys=True, default=float) + "\n")
    os.replace(tmp, path)


def main(argv):
  del argv
  sweep.prepare_process(_JAX_CACHE.value, compile_cache=not _REPORT_ONLY.value)
  extra = tuple(args_lib.parse_arg(",".join(_SET.value)).items())
  sel = sweep.Selection(seeds=tuple(int(s) for s in _SEEDS.value), extra=extra)
  for paper in _PAPERS.value:
    if paper not in PAPERS:
      raise app.UsageError(f"unknown paper {paper!r}; valid: {list(PAPERS)}")
    config_path, results_sub, _ = LAYOUT[paper]
    module = sweep.load_module(REPO / "experiments" / config_path)
    results_dir = Path(_RESULTS_ROOT.value) / results_sub
    runs = sweep.expand(select(module.sweep(), module), sel)
    lrs = lr_selection.parse_lrs(_LRS.value)
    if _DRY_RUN.value:
      sweep.print_plan(paper, lr_selection.with_lrs(runs, lrs) if lrs else runs, results_dir)
      continue
    workdir_root = Path(_WORKDIR_ROOT.value)
    lr_dir = results_dir.with_name(results_dir.name.replace("results", "lr_selection"))
    if _REEVALUATE.value:
      sweep.reevaluate(runs, paper=paper, get_config=module.get_config, results_dir=results_dir,
                       workdir_root=workdir_root)
    elif _REPORT_ONLY.value and lrs:
      # The selection from the runs on disk (a cell missing a run is named and left out).
      lr_selection.report(runs, lrs, results_dir=results_dir, out_dir=lr_dir,
                          log=lambda m, paper=paper: print(f"[{paper}] {m}", flush=True))
    elif not _REPORT_ONLY.value:
      t0 = time.time()

      def log(msg, paper=paper):
        print(msg, flush=True)
        # Store the curve as soon as a run finishes, so a killed sweep loses nothing.
        add_curves(sorted(results_dir.glob("*.json")), workdir_root, paper, module.get_config)

      grid = dict(paper=paper, get_config=module.get_config, results_dir=results_dir,
                  workdir_root=workdir_root, keep_workdirs=True, extend=_EXTEND.value, log=log)
      if lrs:
        lr_selection.run(runs, lrs, out_dir=lr_dir, **grid)
      else:
        sweep.run_grid(runs, **grid)
      print(f"[{paper}] sweep took {time.time() - t0:.0f} s", flush=True)
    add_curves(sorted(results_dir.glob("*.json")), workdir_root, paper, module.get_config)
    write = ctr_report.write if paper == "cape_ctr" else ranking_report.write
    out = write(results_dir, title=TITLES[paper], baseline=module.BASELINE,
                labels=getattr(module, "LABELS", None))
    for k, v in out.items():
      print(f"[{paper}] {k}: {v}", flush=True)


if __name__ == "__main__":
  app.run(main)
