"""Packaging: compatible ranges (not pins) in pyproject.toml, pins only in constraints.txt, the
optional TFDS extra imported lazily, and scripts that leave the device choice to JAX."""
import os
import re
import subprocess
import sys

import pytest
from packaging.requirements import Requirement
from packaging.version import Version

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
tomllib = pytest.importorskip("tomllib")  # Python >= 3.11


def _project():
  with open(os.path.join(REPO, "pyproject.toml"), "rb") as f:
    return tomllib.load(f)["project"]


def _pins():
  out = {}
  for line in open(os.path.join(REPO, "constraints.txt")):
    line = line.split("#")[0].strip()
    if line:
      name, _, version = line.partition("==")
      out[name.lower().replace("_", "-")] = Version(version)
  return out


def test_dependencies_are_ranges_that_admit_newer_compatible_releases():
  reqs = {r.name.lower(): r for r in map(Requirement, _project()["dependencies"])}
  for r in reqs.values():
    assert not any(s.operator == "==" for s in r.specifier), f"{r} is an exact pin"
  # A venv with a newer compatible JAX keeps it (pip leaves a satisfied requirement alone).
  for v in ("0.10.3", "0.11.0"):
    assert Version(v) in reqs["jax"].specifier
  assert "tensorflow-datasets" not in reqs    # optional: the tfds extra


def test_constraints_pin_versions_inside_the_ranges():
  pins = _pins()
  project = _project()
  reqs = list(map(Requirement, project["dependencies"]))
  reqs += [Requirement(r) for r in project["optional-dependencies"]["test"]]
  for r in reqs:
    name = r.name.lower()
    assert name in pins, f"{name} has no pin in constraints.txt"
    assert pins[name] in r.specifier, f"constraints.txt pins {name}=={pins[name]} outside {r}"


def test_tensorflow_datasets_is_imported_lazily():
  code = ("import sys, rankjax, rankjax.main; from rankjax.data import registry; "
          "registry.names(); print('tensorflow_datasets' in sys.modules)")
  out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True,
                       env=dict(os.environ, PYTHONPATH=REPO), timeout=300)
  assert out.returncode == 0, out.stderr[-2000:]
  assert out.stdout.strip().splitlines()[-1] == "False"


def test_scripts_do_not_force_the_cpu():
  for name in os.listdir(os.path.join(REPO, "scripts")):
    text = open(os.path.join(REPO, "scripts", name)).read()
    assert not re.search(r"JAX_PLATFORMS.{0,8}cpu", text), name
