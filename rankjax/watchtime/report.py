"""Tables, must-hold checks and plots of the watch-time reproduction (the specs' deliverables).

  python -m rankjax.watchtime.report --runs=workdirs/watchtime --out=experiments

Reads ``<runs>/{cwm,d2co}/<regime>/<seed>/<method>.json`` and ``<runs>/ltv/<seed>/<variant>.json``;
writes ``experiments/{cwm,d2co,ltv}/results/`` (RESULTS.md, summary.json, PNG plots). Every number
is a mean over the seeds found, with the sample standard deviation and the seed count.
"""
from __future__ import annotations

import argparse
import glob
import json
import os

import numpy as np

CWM_ORDER = ("vr", "pcr", "wlr", "d2q", "wtg", "d2co_a", "ndt", "cwm", "cwm_l", "cwm_c",
             "cwm@logistic")
NAMES = {"vr": "VR", "pcr": "PCR", "wlr": "WLR", "d2q": "D2Q", "wtg": "WTG", "d2co_a": "D2Co(A)",
         "d2co_s": "D2Co(S)", "ndt": "NDT", "cwm": "CWM", "cwm_l": "CWM-L", "cwm_c": "CWM-C",
         "cwm@logistic": "CWM (logistic)", "wt": "WT", "pcr_denoise": "PCR_denoise",
         "wtg_denoise": "WTG_denoise", "d2q_denoise": "D2Q_denoise", "wt_denoise": "WT_denoise"}
D2CO_ORDER = ("wt", "pcr", "wtg", "d2q", "wt_denoise", "pcr_denoise", "wtg_denoise",
              "d2q_denoise", "d2co_a", "d2co_s")


def load(runs, family):
  out = {}
  for p in sorted(glob.glob(os.path.join(runs, family, "*", "*", "*.json"))):
    regime, seed, name = p.split(os.sep)[-3], p.split(os.sep)[-2], os.path.basename(p)[:-5]
    with open(p) as f:
      out.setdefault(regime, {}).setdefault(name, {})[int(seed)] = json.load(f)
  return out


def stat(values):
  v = np.array([x for x in values if x is not None and np.isfinite(x)], np.float64)
  if not len(v):
    return None
  return {"mean": float(v.mean()), "sd": float(v.std(ddof=1)) if len(v) > 1 else 0.0,
          "n": int(len(v)), "values": v.tolist()}


def cell(s, digits=4):
  if s is None:
    return "–"
  return f"{s['mean']:.{digits}f} ± {s['sd']:.{digits}f} ({s['n']})"


def metric(res, regime, name, key, split="test"):
  runs = res.get(regime, {}).get(name, {})
  return stat([r[split].get(key) for r in runs.values()])


def check(label, a, b, higher=True):
  """A must-hold line: 'a > b' on means (or a < b); both with spread and seed counts."""
  if a is None or b is None:
    return f"- {label}: NOT MEASURED (missing runs)"
  ok = a["mean"] > b["mean"] if higher else a["mean"] < b["mean"]
  return (f"- {label}: {'holds' if ok else 'FAILS'} ({a['mean']:.4f} ± {a['sd']:.4f} vs "
          f"{b['mean']:.4f} ± {b['sd']:.4f}; seeds {a['n']}/{b['n']})")


def cwm_report(res, out_dir):
  lines = ["# CWM and the watch-time baselines on watchtime_sim (simulator)", "",
           "FM backbone; XAUC mode \"strict\" (cwm_watch_time.md 4, pairs with distinct w only);",
           "mean ± sample sd (number of seeds). Command: scripts/reproduce_watchtime.sh.", ""]
  methods = [m for m in CWM_ORDER if any(m in res.get(r, {}) for r in res)]
  lines.append("| FM | " + " | ".join(NAMES.get(m, m) for m in methods) + " |")
  lines.append("|---" * (len(methods) + 1) + "|")
  for regime in ("kuai", "wechat"):
    for key, arrow in (("MAE", "↓"), ("XAUC", "↑"), ("XGAUC", "↑"), ("true_GAUC", "↑"),
                       ("true_nDCG@3", "↑"), ("cwmrule_AUC", "↑")):
      digits = 3 if key == "MAE" else 4
      lines.append(f"| {regime} {key} {arrow} | " + " | ".join(
          cell(metric(res, regime, m, key), digits) for m in methods) + " |")
  lines += ["", "true_* = against rel_true = 1[r >= r_0.7] (ground truth); GAUC positives-weighted;",
            "cwmrule_AUC = global AUC against CWM's eq. 8 rule label.", "", "## Must-hold (cwm 9.2)"]
  g = lambda r, m, k: metric(res, r, m, k)
  for r in ("kuai", "wechat"):
    lines.append(check(f"M1 {r}: CWM MAE < VR MAE", g(r, "cwm", "MAE"), g(r, "vr", "MAE"), False))
    lines.append(check(f"M1 {r}: CWM MAE < PCR MAE", g(r, "cwm", "MAE"), g(r, "pcr", "MAE"),
                       False))
  lines.append(check("M2 kuai: CWM XAUC > PCR", g("kuai", "cwm", "XAUC"), g("kuai", "pcr", "XAUC")))
  lines.append(check("M2 kuai: CWM XAUC > D2Q", g("kuai", "cwm", "XAUC"), g("kuai", "d2q", "XAUC")))
  lines.append(check("M3 kuai: CWM GAUC(rel_true) > PCR", g("kuai", "cwm", "true_GAUC"),
                     g("kuai", "pcr", "true_GAUC")))
  lines.append(check("M3 kuai: CWM GAUC(rel_true) > WTG", g("kuai", "cwm", "true_GAUC"),
                     g("kuai", "wtg", "true_GAUC")))
  lines.append(check("M4 kuai: CWM MAE < CWM-L MAE", g("kuai", "cwm", "MAE"),
                     g("kuai", "cwm_l", "MAE"), False))
  lines += ["", "## Should-hold (report)"]
  lines.append(check("kuai: CWM-C MAE worse than CWM", g("kuai", "cwm_c", "MAE"),
                     g("kuai", "cwm", "MAE")))
  lines.append(check("kuai: logistic vs Gaussian link (MAE, lower first)",
                     g("kuai", "cwm@logistic", "MAE"), g("kuai", "cwm", "MAE"), False))
  _write(out_dir, lines, res, "cwm")
  _plot_by_duration(res, out_dir, methods)


def d2co_report(res, out_dir):
  lines = ["# D2Co and its baselines on watchtime_sim (simulator)", "",
           "FM backbone; kuai durations capped at 240 s (D4). GAUC positives-weighted against",
           "rel_true = 1[r >= r_0.7] (true_) and KuaiRand's 18-s long_view2 rule (lv2_);",
           "mean ± sample sd (seeds). Command: scripts/reproduce_watchtime.sh.", ""]
  cols = ("true_GAUC", "true_nDCG@1", "true_nDCG@3", "true_nDCG@5", "lv2_GAUC")
  for regime in ("kuai", "wechat"):
    methods = [m for m in D2CO_ORDER if m in res.get(regime, {})]
    if not methods:
      continue
    lines += [f"## {regime}", "", "| method | " + " | ".join(cols) + " |",
              "|---" * (len(cols) + 1) + "|"]
    for m in methods:
      lines.append(f"| {NAMES.get(m, m)} | " + " | ".join(
          cell(metric(res, regime, m, k)) for k in cols) + " |")
    alphas = [r["alpha"] for r in res[regime].get("d2co_s", {}).values()]
    lines += ["", f"Selected alpha per seed (validation GAUC against lv2_): {alphas}", ""]
    curve = {}
    for r in res[regime].get("d2co_s", {}).values():
      for p in r["alpha_curve"]:
        curve.setdefault(p["alpha"], []).append(p["val_score"])
    if curve:
      lines += ["alpha validation curve (mean validation GAUC over seeds): " + ", ".join(
          f"{a}: {np.mean(v):.4f}" for a, v in sorted(curve.items())), ""]
    buckets = sorted({k.split("_")[0] for k in next(iter(
        res[regime][methods[0]].values()))["test"] if k.startswith("bucket")})
    if buckets:
      lines += ["Duration buckets (true_GAUC):", "", "| method | " + " | ".join(buckets) + " |",
                "|---" * (len(buckets) + 1) + "|"]
      for m in methods:
        lines.append(f"| {NAMES.get(m, m)} | " + " | ".join(
            cell(metric(res, regime, m, f"{b}_true_GAUC")) for b in buckets) + " |")
      lines.append("")
  g = lambda r, m: metric(res, r, m, "true_GAUC")
  lines.append("## Must-hold (d2co 7.2)")
  for r in ("kuai", "wechat"):
    for b in ("pcr", "wtg", "d2q"):
      lines.append(check(f"M1 {r}: D2Co(S) GAUC > {NAMES[b]}", g(r, "d2co_s"), g(r, b)))
    alphas = [x["alpha"] for x in res.get(r, {}).get("d2co_s", {}).values()]
    want = "< 0" if r == "kuai" else "> 0"
    ok = alphas and all((a < 0) if r == "kuai" else (a > 0) for a in alphas)
    lines.append(f"- M1 {r}: alpha {want} selected on validation: "
                 f"{'holds' if ok else 'FAILS'} (selected {alphas})")
    lines.append(check(f"M2 {r}: D2Co(S) >= D2Co(A)", g(r, "d2co_s"), g(r, "d2co_a")))
  for b in ("pcr", "wtg", "d2q"):
    lines.append(check(f"M3 wechat: {NAMES[b]}_denoise > {NAMES[b]}", g("wechat", b + "_denoise"),
                       g("wechat", b)))
    lines.append(check(f"M3 wechat: D2Co(S) > {NAMES[b]}_denoise", g("wechat", "d2co_s"),
                       g("wechat", b + "_denoise")))
  _write(out_dir, lines, res, "d2co")
  _plot_curves(res, out_dir)


def ltv_report(runs, out_dir):
  res = {}
  for p in sorted(glob.glob(os.path.join(runs, "ltv", "*", "*.json"))):
    seed, name = int(p.split(os.sep)[-2]), os.path.basename(p)[:-5]
    with open(p) as f:
      res.setdefault(name, {})[seed] = json.load(f)["test"]
  if not res:
    return
  g = lambda v, k: stat([r.get(k) for r in res.get(v, {}).values()])
  lines = ["# LTV framework on feedvisit_sim (simulator)", "",
           "XAUC mode \"strict\"; mean ± sample sd (seeds). Command: scripts/reproduce_watchtime.sh.",
           "", "## Slide time: XAUC within page groups (PDQ head vs slide-time MSE)", "",
           "| page group | PDQ (full) | MSE (baseline) |", "|---|---|---|"]
  groups = ("0", "1-2", "3-5", "6-9", "10-15", "16-29", "30+")
  for k, name in enumerate(groups):
    a = stat([r["slide_xauc_by_group"].get(str(k)) for r in res.get("full", {}).values()])
    b = stat([r["slide_xauc_by_group"].get(str(k)) for r in res.get("baseline", {}).values()])
    lines.append(f"| {name} | {cell(a)} | {cell(b)} |")
  lines.append(f"| mean excl. page 0 | {cell(g('full', 'slide_xauc_mean_excl_page0'))} | "
               f"{cell(g('baseline', 'slide_xauc_mean_excl_page0'))} |")
  lines += ["", "## Ablations", "", "| quantity | model | value |", "|---|---|---|"]
  for q, vs in (("attr_xauc_vs_dS", ("full", "baseline", "attr_mse_only")),
                ("attr_xauc_vs_dg", ("full", "baseline")),
                ("attr_mse_min2", ("full", "attr_mse_only")),
                ("author_xauc", ("full", "no_stopgrad", "delayed_only")),
                ("watch_xauc", ("full", "no_author", "no_stopgrad", "baseline"))):
    for v in vs:
      lines.append(f"| {q} | {v} | {cell(g(v, q))} |")
  lines += ["", "attr_* of `baseline` = the same log-link MSE + Tweedie head trained on the raw",
            "slide time; dS = Monte-Carlo E[dS_j] ground truth; attr_mse in minutes^2.", "",
            "## Must-hold (ltv 9.2)"]
  lines.append(check("M1: PDQ mean within-group XAUC (excl. page 0) > slide-time MSE",
                     g("full", "slide_xauc_mean_excl_page0"),
                     g("baseline", "slide_xauc_mean_excl_page0")))
  lines.append(check("M2: attributed model XAUC vs E[dS] > raw slide-time model",
                     g("full", "attr_xauc_vs_dS"), g("baseline", "attr_xauc_vs_dS")))
  lines.append(check("M3: dual-stream author XAUC > delayed-only", g("full", "author_xauc"),
                     g("delayed_only", "author_xauc")))
  a, b = g("full", "watch_xauc"), g("no_author", "watch_xauc")
  if a and b:
    diff = a["mean"] - b["mean"]
    lines.append(f"- M4: watch-time XAUC with author task (stop-gradient) minus without: "
                 f"{diff:+.4f} ({'holds' if diff >= -0.002 else 'FAILS'}: must be >= -0.002)")
  c = g("no_stopgrad", "watch_xauc")
  if c and b:
    lines.append(f"- M4 (report): without stop-gradient minus without author task: "
                 f"{c['mean'] - b['mean']:+.4f}")
  lines += ["", "## Should-hold (report)"]
  lines.append(check("Tweedie + MSE lowers attributed MSE vs MSE alone", g("full", "attr_mse_min2"),
                     g("attr_mse_only", "attr_mse_min2"), False))
  a = stat([r["slide_xauc_by_group"].get("0") for r in res.get("full", {}).values()])
  b = stat([r["slide_xauc_by_group"].get("0") for r in res.get("baseline", {}).values()])
  lines.append(check("page 0: PDQ not better than MSE (expected to 'fail' this line)", a, b))
  os.makedirs(out_dir, exist_ok=True)
  with open(os.path.join(out_dir, "RESULTS.md"), "w") as f:
    f.write("\n".join(lines) + "\n")


def _write(out_dir, lines, res, family):
  os.makedirs(out_dir, exist_ok=True)
  with open(os.path.join(out_dir, "RESULTS.md"), "w") as f:
    f.write("\n".join(lines) + "\n")
  summary = {r: {m: {s: {k: v for k, v in run["test"].items() if isinstance(v, float)}
                     for s, run in runs.items()} for m, runs in ms.items()}
             for r, ms in res.items()}
  with open(os.path.join(out_dir, "summary.json"), "w") as f:
    json.dump(summary, f, indent=1, sort_keys=True)


def _plot_by_duration(res, out_dir, methods):
  import matplotlib  # pylint: disable=g-import-not-at-top
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top
  for regime, ms in res.items():
    fig, ax = plt.subplots(figsize=(7, 4.5))
    truth = None
    for m in methods:
      runs = [r["by_duration"] for r in ms.get(m, {}).values() if "by_duration" in r]
      if not runs:
        continue
      n = min(len(r["d"]) for r in runs)
      d = np.mean([r["d"][:n] for r in runs], 0)
      ax.plot(d, np.mean([r["score_pct"][:n] for r in runs], 0), marker=".", label=NAMES[m])
      truth = (d, np.mean([r["r_pct"][:n] for r in runs], 0))
    if truth is not None:
      ax.plot(*truth, "k--", lw=2, label="true interest r")
    ax.set_xscale("log")
    ax.set_xlabel("duration bucket (mean s, equal-frequency deciles)")
    ax.set_ylabel("mean percentile on the test split")
    ax.set_title(f"predicted vs true interest by duration (watchtime_sim {regime}; simulator)")
    ax.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    fig.savefig(os.path.join(out_dir, f"interest_by_duration_{regime}.png"), dpi=110)
    plt.close(fig)


def _plot_curves(res, out_dir):
  import matplotlib  # pylint: disable=g-import-not-at-top
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top
  for regime, ms in res.items():
    runs = ms.get("d2co_s") or ms.get("d2co_a")
    if not runs:
      continue
    seed = min(runs)
    c = runs[seed].get("d2co_curves")
    if not c:
      continue
    fig, ax = plt.subplots(figsize=(7, 4.5))
    ax.plot(c["d"], c["hi"], label="fitted w~+ (interest)")
    ax.plot(c["d"], c["lo"], label="fitted w~- (noise)")
    if "true_d" in c:
      ax.plot(c["true_d"], c["true_plus"], ".", ms=3, label="true mu+ (simulator)")
      ax.plot(c["true_d"], c["true_minus"], ".", ms=3, label="true mu- (simulator)")
    ax.set_xlabel("duration (s)")
    ax.set_ylabel("watch time (s)")
    ax.set_title(f"D2Co per-duration mixture means, watchtime_sim {regime}, seed {seed}")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(os.path.join(out_dir, f"d2co_curves_{regime}.png"), dpi=110)
    plt.close(fig)


def main(argv=None):
  p = argparse.ArgumentParser()
  p.add_argument("--runs", required=True)
  p.add_argument("--out", default="experiments")
  p.add_argument("--subdir", default="",
                 help="results/<subdir>/ instead of results/ (e.g. 'full' for --budget=full, so "
                      "that the two budgets never overwrite each other)")
  a = p.parse_args(argv)
  where = lambda family: os.path.join(a.out, family, "results", a.subdir)
  cwm = load(a.runs, "cwm")
  if cwm:
    cwm_report(cwm, where("cwm"))
  d2 = load(a.runs, "d2co")
  if d2:
    d2co_report(d2, where("d2co"))
  ltv_report(a.runs, where("ltv"))

if __name__ == "__main__":
  main()
