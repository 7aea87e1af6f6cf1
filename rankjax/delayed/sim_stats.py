"""The calibration statistics of trace_sim (reader_gmv.md 7.2) and mac_sim
(mal_multi_attribution.md 7.2), as numbers (the slow tests assert them).

  python -m rankjax.delayed.sim_stats --preset=small --out=experiments/reader/results/sim_stats.json
"""
from __future__ import annotations

import json
import sys

import numpy as np

from rankjax.metrics import classification, grouped


def trace_stats(sim: dict) -> dict:
  c = sim["clicks"]
  rel = c["pay_times"] - c["click_time"][:, None]
  paid = c["pay_times"] >= 0
  share = lambda s: float((c["pay_amounts"] * ((rel <= s) & paid)).sum() / c["gmv"].sum())
  hour = (c["click_time"] % 86400) // 3600
  by_hour = np.array([c["gmv"][hour == h].mean() for h in range(24)]) / c["gmv"].mean()
  ly = np.log(c["gmv"].astype(np.float64))
  rep = c["multi_tag"] > 0
  tail = lambda x: float(np.quantile(x, 0.99) - np.quantile(x, 0.5))
  return dict(
      clicks=int(len(c["gmv"])), repurchase_share=float(rep.mean()), share_1h=share(3600),
      share_days=[share(d * 86400) for d in range(1, 8)], mean_gmv=float(c["gmv"].mean()),
      gmv_by_hour_over_mean=by_hour.round(4).tolist(),
      top3_hours=sorted(np.argsort(by_hour)[-3:].tolist()),
      log_gmv_mean=dict(repurchase=float(ly[rep].mean()), single=float(ly[~rep].mean())),
      log_gmv_q99_minus_q50=dict(repurchase=tail(ly[rep]), single=tail(ly[~rep])),
      rho_auc=float(classification.auc(c["multi_tag"], sim["truth"]["rho"])))


def mac_stats(sim: dict) -> dict:
  tr, te = sim["train"], sim["test"]
  g = grouped.gauc(te["last"], sim["test_truth"]["e"], te["user_id"], weighting="impressions")
  return dict(
      train_clicks=int(len(tr["last"])), test_clicks=int(len(te["last"])),
      last_rate=float(tr["last"].mean()),
      linear_over_last=float(tr["linear"].sum() / tr["last"].sum()),
      mta_over_last=float(tr["mta"].sum() / tr["last"].sum()),
      first_over_last=float(tr["first"].sum() / tr["last"].sum()),
      test_users=g.n_groups, test_users_both_classes=g.n_valid,
      test_users_both_classes_frac=g.n_valid / max(g.n_groups, 1),
      path_len_of_conversions=np.bincount(np.minimum(
          sim["train_truth"]["path_len"][tr["last"] > 0], 6)).tolist())


def main(argv):
  opts = dict(a.lstrip("-").split("=", 1) for a in argv[1:])
  preset = opts.get("preset", "small")
  from rankjax.delayed import mac_sim, trace_sim  # pylint: disable=g-import-not-at-top
  out = {"trace_sim": dict(preset=preset, seed=0, **trace_stats(trace_sim.simulate(preset, 0))),
         "mac_sim": dict(preset=preset, seed=0, **mac_stats(mac_sim.simulate(preset, 0)))}
  text = json.dumps(out, indent=1)
  if "out" in opts:
    with open(opts["out"], "w") as f:
      f.write(text + "\n")
  print(text)


if __name__ == "__main__":
  main(sys.argv)
