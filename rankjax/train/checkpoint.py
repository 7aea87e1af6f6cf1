"""Orbax checkpoints of the whole train state plus a small JSON of loop state.

The loop state (early-stopping counters, best metric, evaluation history) goes in the same
checkpoint as the arrays, so resuming restores everything a run depends on. The data position is
the step itself (rankjax/data/pipeline.py), and the RNG is ``fold_in(seed_key, step)``.
"""
from __future__ import annotations

import copy
import os

from absl import logging
import jax
import numpy as np
import orbax.checkpoint as ocp


class Checkpointer:
  """Save every ``every`` steps and at the end, keep ``keep``, restore the latest."""

  def __init__(self, directory: str, *, every: int, keep: int = 3, async_save: bool = True):
    self.directory = os.path.abspath(directory)
    options = ocp.CheckpointManagerOptions(max_to_keep=keep, save_interval_steps=1,
                                           enable_async_checkpointing=async_save, create=True)
    self.every = every
    self.manager = ocp.CheckpointManager(self.directory, options=options,
                                         item_names=("state", "loop"))

  def latest_step(self) -> int | None:
    return self.manager.latest_step()

  def path(self, step: int) -> str:
    return os.path.join(self.directory, str(step))

  def should_save(self, step: int) -> bool:
    return self.every > 0 and step % self.every == 0

  def save(self, step: int, state, loop_state: dict, *, force: bool = False) -> bool:
    if not force and not self.should_save(step):
      return False
    if step in self.manager.all_steps():
      return False
    # The JSON is written on a background thread: hand it a snapshot, not the live dict.
    return self.manager.save(step, args=ocp.args.Composite(
        state=ocp.args.StandardSave(state), loop=ocp.args.JsonSave(copy.deepcopy(loop_state))),
                             force=True)

  def restore(self, abstract_state, step: int | None = None):
    """(state, loop_state) at ``step`` (default latest), with the shardings of ``abstract_state``."""
    step = self.latest_step() if step is None else step
    target = jax.tree.map(ocp.utils.to_shape_dtype_struct, abstract_state)
    restored = self.manager.restore(step, args=ocp.args.Composite(
        state=ocp.args.StandardRestore(target), loop=ocp.args.JsonRestore()))
    return restored.state, restored.loop

  def restore_raw(self, step: int | None = None):
    """(state as a nested dict of host arrays, loop_state), without a target structure."""
    step = self.latest_step() if step is None else step
    restored = self.manager.restore(step, args=ocp.args.Composite(
        state=ocp.args.StandardRestore(), loop=ocp.args.JsonRestore()))
    return restored.state, restored.loop

  def stored_shape(self, step: int, *keys: str) -> tuple[int, ...]:
    """Shape of the state array at ``keys`` saved at ``step``, from the metadata (no array read)."""
    meta = ocp.StandardCheckpointer().metadata(os.path.join(self.path(step), "state"))
    node = meta.item_metadata
    for k in keys:
      node = node[k]
    return tuple(node.shape)

  def wait(self):
    self.manager.wait_until_finished()

  def close(self):
    self.manager.wait_until_finished()
    self.manager.close()


class MemoryCheckpointer:
  """The best-state slot of ``Checkpointer`` kept in host memory (``train.best_checkpoint =
  "memory"``): one state, no files. For runs whose workdir is thrown away afterwards (the sweeps),
  where writing the best state at every improvement took about 40% of a short run's wall time.
  A killed run cannot resume from it, so sweeps restart such runs from scratch. Single-process
  only (a host copy needs every shard of the state): ``best_checkpointer`` uses the disk with
  several processes."""

  def __init__(self):
    self._step, self._state, self._loop = None, None, None

  def latest_step(self) -> int | None:
    return self._step

  def save(self, step: int, state, loop_state: dict, *, force: bool = False) -> bool:
    if not force:
      return False
    # A copy, not a view: the train step donates (and overwrites) the state's buffers.
    self._state = jax.tree.map(lambda x: np.array(x, copy=True), jax.device_get(state))
    self._step, self._loop = step, copy.deepcopy(loop_state)
    return True

  def restore(self, abstract_state, step: int | None = None):
    """(state, loop_state) of the saved step, placed with the shardings of ``abstract_state``."""
    if self._step is None or (step is not None and step != self._step):
      raise ValueError(f"no state of step {step} in memory (holding {self._step})")
    state = jax.tree.map(lambda a, x: jax.device_put(x, a.sharding), abstract_state, self._state)
    return state, copy.deepcopy(self._loop)

  def close(self):
    self._state = None


BEST_KINDS = ("disk", "memory")


def check_best_kind(kind: str) -> None:
  if kind not in BEST_KINDS:
    raise ValueError(f"train.best_checkpoint={kind!r}: valid are {list(BEST_KINDS)}")


def best_checkpointer(workdir: str, kind: str):
  """The best-state store of ``train.best_checkpoint``: ``disk`` (orbax, ``workdir/best``; a
  resumed run finds it) or ``memory`` (one process; with several, the disk)."""
  check_best_kind(kind)
  if kind == "memory" and jax.process_count() == 1:
    return MemoryCheckpointer()
  if kind == "memory":
    logging.warning("train.best_checkpoint='memory' needs one process; %d processes keep the "
                    "best state on disk", jax.process_count())
  return Checkpointer(os.path.join(workdir, "best"), every=0, keep=1, async_save=False)
