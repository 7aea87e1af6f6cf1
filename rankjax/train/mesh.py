"""Device mesh, sharding rules, and multi-host initialisation.

The mesh has two axes: ``data`` (the batch is split over it) and ``model`` (large embedding tables
are row-sharded over it). Dense parameters are replicated: ranking towers are small next to the
tables, so replicating them costs little and saves a collective per layer.
"""
from __future__ import annotations

import re
from typing import Mapping, Sequence

import jax
import numpy as np
from absl import logging
from jax.sharding import AxisType, Mesh, NamedSharding, PartitionSpec as P

DATA_AXIS = "data"
MODEL_AXIS = "model"


def make_mesh(data: int = -1, model: int = 1, devices: Sequence | None = None) -> Mesh:
  """A ``(data, model)`` mesh over ``devices`` (default: all); ``data=-1`` takes what is left."""
  devices = list(devices if devices is not None else jax.devices())
  if model < 1 or len(devices) % model:
    raise ValueError(f"model axis {model} does not divide the {len(devices)} devices")
  if data == -1:
    data = len(devices) // model
  if data * model > len(devices) or (data * model < len(devices) and jax.process_count() > 1):
    raise ValueError(f"mesh data={data} x model={model} does not fit the {len(devices)} devices")
  if data * model < len(devices):
    logging.info("mesh uses %d of %d devices", data * model, len(devices))
  arr = np.asarray(devices[:data * model]).reshape(data, model)
  return Mesh(arr, (DATA_AXIS, MODEL_AXIS), axis_types=(AxisType.Auto, AxisType.Auto))


def replicated(mesh: Mesh) -> NamedSharding:
  return NamedSharding(mesh, P())


def batch_sharding(mesh: Mesh) -> NamedSharding:
  """Leading (batch) axis over ``data``."""
  return NamedSharding(mesh, P(DATA_AXIS))


def _path_str(path) -> str:
  parts = []
  for k in path:
    for attr in ("key", "name", "idx"):
      if hasattr(k, attr):
        parts.append(str(getattr(k, attr)))
        break
  return "/".join(parts)


def tree_shardings(mesh: Mesh, tree, rules: Sequence[tuple[str, P]]):
  """NamedShardings for a pytree: the first ``(regex, spec)`` rule matching a leaf's path wins;
  unmatched leaves are replicated. Paths look like ``embeddings/user_id/acc``."""
  compiled = [(re.compile(r), s) for r, s in rules]

  def pick(path, leaf):
    p = _path_str(path)
    for rx, spec in compiled:
      if rx.search(p):
        if len(spec) > np.ndim(leaf):
          raise ValueError(f"sharding rule {rx.pattern!r} -> {spec} does not fit leaf {p!r} "
                           f"of shape {np.shape(leaf)}")
        return NamedSharding(mesh, spec)
    return NamedSharding(mesh, P())
  return jax.tree_util.tree_map_with_path(pick, tree)


def table_rules(table_specs: Mapping[str, P]) -> list[tuple[str, P]]:
  """Rules that shard each sharded table by rows, with everything kept per row of it: its
  sparse-optimizer slots and the [V, D] state of multi-task methods (PUB's moments live under
  ``mto_state/.../rows/<table>``)."""
  return [(rf"(^|/)(embeddings|rows)/{re.escape(name)}(/|$)", spec)
          for name, spec in table_specs.items() if spec != P()]


def initialize_distributed(coordinator_address: str | None = None, num_processes: int | None = None,
                           process_id: int | None = None) -> None:
  """``jax.distributed.initialize`` (arguments may come from the cluster environment)."""
  kwargs = {}
  if coordinator_address:
    kwargs = dict(coordinator_address=coordinator_address, num_processes=num_processes,
                  process_id=process_id)
  jax.distributed.initialize(**kwargs)
  logging.info("jax.distributed: process %d of %d, %d local / %d global devices",
               jax.process_index(), jax.process_count(), jax.local_device_count(),
               jax.device_count())


def host_to_global(batch: Mapping[str, np.ndarray], sharding: NamedSharding) -> dict:
  """Places this host's slice of the global batch onto the mesh.

  Single process: a plain sharded ``device_put``. Several processes: each host passes its own rows
  and they are stitched into one global array (global batch = hosts x local batch).
  """
  if jax.process_count() == 1:
    return jax.device_put(dict(batch), sharding)
  return {k: jax.make_array_from_process_local_data(sharding, np.asarray(v))
          for k, v in batch.items()}
