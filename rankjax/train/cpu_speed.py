"""Speed switches for XLA:CPU (``config.cpu_speed``).

* ``ynn_fusion_type``: the XLA option the trainer compiles its steps with
  (``compiler_options``); ``"dot"`` (default) changes rounding only, ``""`` is XLA's default.
* ``unroll_threefry``: JAX lowers the Threefry-2x32 hash on CPU as a rolled ``fori_loop`` (five
  iterations of four rounds) to keep compile times short. Every dropout mask of a training step
  then becomes a while loop whose body materialises the ``[B, L, D]`` uint32 state after each
  group of rounds; on the SASRec step (six dropout masks per step) this was the largest block of
  element-wise work after the matmuls (issue 17, BUILD_NOTES). The unrolled lowering is the one
  JAX uses on GPU/TPU: the same arithmetic on the same words, so the random bits are identical,
  but XLA fuses the 20 rounds into one loop over the elements.

The Threefry switch only changes how the hash is compiled (every bit the same); it must run
before the first jit that draws random bits is lowered (``trainer.setup`` calls it). Lowerings
already cached by JAX keep the rolled form.

``host_devices`` (0: leave JAX's device count alone) splits the CPU into that many XLA devices
(-1: one per core this process may use) before the backend starts, so the trainer's mesh runs the
batch data-parallel over them. XLA:CPU runs each device's program on its own thread, which can
keep the cores busier on a step made of many small kernels. Measured on the SASRec step it was
within this machine's run-to-run noise (issue 17, BUILD_NOTES), so it is off by default.
Gradients are summed across the devices, so only the float summation order changes; replicated
parameters and tables take memory once per device. The device count is
process-wide: JAX fixes it when its backend starts, and later runs in the same process (a
notebook) keep it.

Loops that jit their own steps outside the trainer (the delayed-feedback streams) wrap them with
``cpu_speed.jit`` and compile with the options of the enclosing
``process_options_from(config.cpu_speed)`` block; outside one, with XLA's defaults.
"""
from __future__ import annotations

import contextlib
import functools
import os

from absl import logging
import jax

_applied = {"unroll_threefry": False}


def unroll_threefry() -> bool:
  """Registers the unrolled Threefry lowering for the CPU platform. Returns True if it did (or
  already had); False if this JAX version lacks the private rule, in which case nothing changes."""
  if _applied["unroll_threefry"]:
    return True
  try:
    # Private JAX API: guarded, because a JAX upgrade may move it.
    from jax._src.interpreters import mlir  # pylint: disable=g-import-not-at-top
    from jax._src.random import threefry2x32 as tf  # pylint: disable=g-import-not-at-top
    rule = tf._threefry2x32_lowering_rule  # pylint: disable=protected-access
    prim = tf.threefry2x32_p
  except (ImportError, AttributeError):
    return False
  mlir.register_lowering(prim, rule, platform="cpu", inline=False)
  _applied["unroll_threefry"] = True
  return True


def usable_cores() -> int:
  try:
    return len(os.sched_getaffinity(0))
  except AttributeError:  # not Linux
    return os.cpu_count() or 1


def set_host_devices(requested: int, batch_size: int) -> int:
  """Applies ``cpu_speed.host_devices``; returns the CPU device count JAX uses afterwards (0 where
  nothing was asked). An explicit ``--xla_force_host_platform_device_count`` or
  ``jax_num_cpu_devices`` wins (the tests simulate an 8-device mesh that way). With -1 the count
  is the usable cores, lowered until it divides ``batch_size`` (the mesh splits each batch)."""
  if requested == 0:
    return 0
  if requested < -1:
    raise ValueError(f"cpu_speed.host_devices={requested}: use 0 (JAX's default), -1 (one per "
                     f"core) or a positive device count")
  n = requested
  if n == -1:
    n = max(1, usable_cores())
    while batch_size % n:
      n -= 1
  from jax._src import xla_bridge  # pylint: disable=g-import-not-at-top
  explicit = ("--xla_force_host_platform_device_count" in os.environ.get("XLA_FLAGS", "")
              or jax.config.jax_num_cpu_devices != -1)
  if explicit or xla_bridge.backends_are_initialized():
    have = len(jax.devices("cpu"))
    if have != n and requested != -1:
      logging.warning("cpu_speed.host_devices=%d not applied: JAX already runs %d CPU devices "
                      "(set by XLA_FLAGS, jax_num_cpu_devices or an earlier run in this "
                      "process)", requested, have)
    return have
  jax.config.update("jax_num_cpu_devices", n)
  return n


# ``ynn_fusion_type`` values -> XLA's LibraryFusionType names.
YNN_FUSION_TYPES = {"dot": ("LIBRARY_FUSION_TYPE_DOT",),
                    "dot_reduce": ("LIBRARY_FUSION_TYPE_DOT", "LIBRARY_FUSION_TYPE_REDUCE")}


def compiler_options(cfg) -> dict:
  """XLA compiler options of the jitted steps from ``cfg`` (empty: XLA's defaults).

  ``ynn_fusion_type="dot"``: YNNPACK fusions hold the matmuls only; the element-wise work around
  them runs in XLA's own loop fusions. XLA's default also pulls element-wise producers (bias,
  LayerNorm scale and shift, dropout scaling) into the YNNPACK fusions, and because those cannot
  hold a broadcast, every broadcast operand is first written out at full size.
  ``"dot_reduce"``: YNNPACK also takes the reductions (measured level with ``"dot"`` once the
  layers' own sums are matmuls, ``rankjax/layers/reduce.py``; slower with flax's LayerNorm).
  """
  name = cfg.get("ynn_fusion_type", "")
  if not name:
    return {}
  if name not in YNN_FUSION_TYPES:
    raise ValueError(f"cpu_speed.ynn_fusion_type={name!r}: valid are '' and "
                     f"{sorted(YNN_FUSION_TYPES)}")
  if jax.default_backend() != "cpu":
    return {}
  return {"xla_cpu_experimental_ynn_fusion_type": ",".join(YNN_FUSION_TYPES[name])}


def apply(cfg) -> dict:
  """Applies the switches of ``cfg`` (a mapping with bool ``unroll_threefry``, default True)."""
  done = {}
  if cfg.get("unroll_threefry", True):
    done["unroll_threefry"] = unroll_threefry()
  return done


_process = {"options": {}}


@contextlib.contextmanager
def process_options_from(cfg):
  """Applies ``cfg`` (``config.cpu_speed``) and, inside the block, makes its compiler options
  the ones every ``cpu_speed.jit`` function compiles with; the previous ones come back after it
  (a test process runs many experiments). Yields the options."""
  apply(cfg)
  previous = _process["options"]
  _process["options"] = compiler_options(cfg)
  try:
    yield dict(_process["options"])
  finally:
    _process["options"] = previous


def process_options() -> dict:
  """The compiler options ``cpu_speed.jit`` functions compile with now."""
  return dict(_process["options"])


def jit(fun=None, **jit_kwargs):
  """``jax.jit`` whose compiler options are the process's (``process_options_from``) at call
  time, not at decoration time: the delayed-feedback modules jit their steps at import, before a
  config is read. One jitted function per distinct set of options, each with JAX's own cache."""
  if fun is None:
    return functools.partial(jit, **jit_kwargs)
  by_options = {}

  @functools.wraps(fun)
  def call(*args, **kwargs):
    key = tuple(sorted(_process["options"].items()))
    jitted = by_options.get(key)
    if jitted is None:
      jitted = by_options[key] = jax.jit(fun, compiler_options=dict(key) or None, **jit_kwargs)
    return jitted(*args, **kwargs)

  return call
