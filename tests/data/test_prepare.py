"""``python -m rankjax.data.prepare``: prints the statistics of the dataset card."""
import json
import os
import subprocess
import sys

from data_testutil import REPO, shared_dir
from rankjax.data import prepare


def test_cli_prints_card_statistics_from_any_directory(tmp_path):
  shared_dir("kuairand_pure_features")
  env = dict(os.environ)
  env.pop("RANKJAX_SHARED", None)  # the default ../shared must resolve from the repository
  env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
  out = subprocess.run(
      [sys.executable, "-m", "rankjax.data.prepare", "kuairand_pure_features", "--notfds",
       "--data_dir", str(tmp_path / "prepared")],
      cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120, check=True).stdout
  assert "dataset kuairand_pure_features" in out
  assert "users: 27285 rows" in out and "videos: 7583 rows" in out
  stats = json.loads(out[out.index("\n{") + 1:])
  assert (stats["users"], stats["videos"], stats["authors"]) == (27285, 7583, 6510)
  assert stats["video_duration_s"]["count"] == 7344


def test_headline_and_options():
  stats = {"splits": {"train": {"rows": 10, "click": {"count": 10, "positives": 3, "rate": 0.3,
                                                      "mean": 0.3},
                                "distinct_user": 4}}}
  text = prepare.headline("toy", stats)
  assert "train: 10 rows, click 3 (30.00%), users 4" in text
  assert prepare.parse_options(["max_len=20", "origin=2025-05-01", "x=[1, 2]"]) == {
      "max_len": 20, "origin": "2025-05-01", "x": [1, 2]}
