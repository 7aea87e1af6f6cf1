"""The observation-window sweep table (tesla_netcvr.md 8.3): points found by label, RI against
the base label's Pre-trained and Oracle, and where it peaks."""
import json

import pytest

from rankjax.delayed import window_sweep


def _label(root, name, per_seed):
  (root / name).mkdir(parents=True)
  (root / name / "summary.json").write_text(json.dumps({"per_seed": per_seed}))


def _cell(auc, prauc=0.1):
  return {"NetCVR/AUC": auc, "NetCVR/PRAUC": prauc}


def test_sweep_points_ri_and_interior_peak(tmp_path):
  seeds = ("seed0_42", "seed1_43")
  base = {"pretrained": {s: _cell(0.70, 0.09) for s in seeds},
          "oracle": {s: _cell(0.72, 0.11) for s in seeds},
          "tesla": {s: _cell(0.705) for s in seeds}}
  _label(tmp_path, "medium", base)
  for days, auc in (("0.003", 0.702), ("0.05", 0.715), ("0.25", 0.701)):
    _label(tmp_path, f"medium_wv{days}", {"tesla": {s: _cell(auc) for s in seeds}})
  _label(tmp_path, "medium_wr0.25", {"tesla": {"seed0_42": _cell(0.70)}})
  _label(tmp_path, "medium_lr0.001", {"tesla": {"seed0_42": _cell(0.9)}})  # not a window label
  sweep = window_sweep.collect(tmp_path, "medium")
  assert [d for d, _ in sweep["wv"]] == [0.003, 0.01, 0.05, 0.25]
  assert [d for d, _ in sweep["wr"]] == [0.01, 0.25]
  # W_r^obs has seed1_43 at its base point only: the axis keeps seed0_42 alone.
  assert [sorted(rows) for _, rows in sweep["wr"]] == [["seed0_42"], ["seed0_42"]]
  # RI = (0.715 - 0.70) / (0.72 - 0.70) = 75 %, from the base label's cells of the same seed.
  assert sweep["wv"][2][1]["seed1_43"]["RI-AUC"] == pytest.approx(75.0)
  assert window_sweep.peak(sweep["wv"]) == {"days": 0.05, "interior": True, "points": 4,
                                            "seeds_interior": 2, "seeds": 2}
  assert window_sweep.peak(sweep["wr"])["interior"] is None  # two points cannot peak inside
  out = window_sweep.write(tmp_path, "medium")
  text = out["table"].read_text()
  assert "| W_v^obs | 0.05 | 0.7150 ± 0.0000 |" in text
  assert ("W_v^obs: RI-AUC peaks at 0.05 day, inside the swept range (inside on 2 of 2 seed "
          "pairs); seed pairs common to every point: seed0_42, seed1_43." in text)
  assert out["plot"].read_bytes()[:4] == b"\x89PNG"


def test_a_peak_at_the_end_of_the_range_is_reported_as_such(tmp_path):
  cells = {"pretrained": {"s": _cell(0.70)}, "oracle": {"s": _cell(0.72)},
           "tesla": {"s": _cell(0.71)}}
  _label(tmp_path, "small", cells)
  for days, auc in (("0.003", 0.700), ("0.25", 0.719)):
    _label(tmp_path, f"small_wv{days}", {"tesla": {"s": _cell(auc)}})
  assert "* W_r^obs: not swept." in window_sweep.markdown(window_sweep.collect(tmp_path, "small"),
                                                         "tesla")
  p = window_sweep.peak(window_sweep.collect(tmp_path, "small")["wv"])
  assert p == {"days": 0.25, "interior": False, "points": 3, "seeds_interior": 0, "seeds": 1}


def test_the_mean_uses_only_seed_pairs_every_point_has(tmp_path):
  seeds = ("a", "b", "c")
  base = {"pretrained": {s: _cell(0.70) for s in seeds}, "oracle": {s: _cell(0.72) for s in seeds},
          "tesla": {"a": _cell(0.71), "b": _cell(0.60), "c": _cell(0.60)}}
  _label(tmp_path, "m", base)
  for days, auc in (("0.003", 0.705), ("0.05", 0.708)):
    _label(tmp_path, f"m_wv{days}", {"tesla": {"a": _cell(auc)}})
  points = window_sweep.collect(tmp_path, "m")["wv"]
  # With b and c in the base point's mean (0.6367) the peak would move to 0.05 day.
  assert [sorted(rows) for _, rows in points] == [["a"]] * 3
  assert window_sweep.peak(points)["days"] == 0.01
