"""Test-wide settings: an 8-device simulated CPU mesh and compile-light XLA.

The flags must be set before JAX initialises its backend, hence module level.
"""
import os

os.environ.setdefault("JAX_PLATFORMS", "cpu")
if "--xla_force_host_platform_device_count" not in os.environ.get("XLA_FLAGS", ""):
  os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") +
                             " --xla_force_host_platform_device_count=8").strip()

# Compilation dominates these small tests; the unoptimised pipeline is several times faster to
# build and gives the same numbers up to float reassociation. Set through the environment so that
# the CLI subprocesses of the tests inherit it too.
os.environ.setdefault("JAX_DISABLE_MOST_OPTIMIZATIONS", "true")
# XLA:CPU's newer MLIR fusion emitters take about a third longer to compile these steps than the
# classic elemental emitters (the suite on one core: 1905 s -> 1354 s; BUILD_NOTES, eighth
# session). The tests compare runs within one setting, so compile-light runs use the classic ones.
if (os.environ["JAX_DISABLE_MOST_OPTIMIZATIONS"].lower() in ("1", "true")
    and "--xla_cpu_use_fusion_emitters" not in os.environ.get("XLA_FLAGS", "")):
  os.environ["XLA_FLAGS"] += " --xla_cpu_use_fusion_emitters=false"

import jax  # pylint: disable=g-import-not-at-top,wrong-import-position

jax.config.update("jax_disable_most_optimizations",
                  os.environ["JAX_DISABLE_MOST_OPTIMIZATIONS"].lower() in ("1", "true"))

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHARED = os.environ.get("RANKJAX_SHARED", os.path.join(REPO, "..", "shared"))

import pytest  # pylint: disable=g-import-not-at-top,wrong-import-position


def pytest_configure(config):
  config.addinivalue_line(
      "markers", "slow: longer runs (simulator presets, seeds); skipped unless RANKJAX_SLOW=1")


def pytest_collection_modifyitems(config, items):
  del config
  if os.environ.get("RANKJAX_SLOW", "").lower() in ("1", "true"):
    return
  skip = pytest.mark.skip(reason="slow test: set RANKJAX_SLOW=1 to run it")
  for item in items:
    if "slow" in item.keywords:
      item.add_marker(skip)
