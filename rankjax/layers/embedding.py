"""Embedding tables: initialisation, deduplicated lookups, sharded gathers, feature assembly.

Tables are plain ``[rows, D]`` arrays in the params tree under ``embeddings/<table>`` (framework.md
section 3), not Flax modules, because the train step must differentiate with respect to the rows it
gathered rather than the table: ``jax.grad`` through a gather of a ``[V, D]`` table materialises a
dense ``[V, D]`` cotangent, which dominates the step for large V.

The lookup of one table in one step is:

1. ``table_ids``: all ids of every feature using the table, flattened to ``[N]`` (static N).
2. ``dedupe``: ``uniq [N]`` (sorted unique ids, padded with ``sentinel`` = row count) and
   ``inverse [N]`` with ``ids == uniq[inverse]``.
3. ``gather_rows``: ``rows = table[uniq]`` ``[N, D]``; padding rows read as zeros. Row-sharded tables
   gather inside ``shard_map``: each shard reads the ids in its range and a ``psum`` over the
   ``model`` axis assembles the rows, so no device ever holds the whole table.
4. ``assemble``: ``rows[inverse]`` reshaped per feature and pooled (bags), inside the differentiated
   function, so the gradient arrives deduplicated and summed as ``[N, D]`` for ``uniq``.
"""
from __future__ import annotations

import functools
from typing import Mapping

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import PartitionSpec as P

from rankjax.data import features as F

MODEL_AXIS = "model"
DATA_AXIS = "data"


def padded_rows(num_rows: int, multiple: int) -> int:
  """Rows allocated for a table so that it splits evenly over ``multiple`` shards."""
  return -(-num_rows // multiple) * multiple


TABLE_INITS = ("normal", "xavier_normal")


def init_tables(spec: F.FeatureSpec, rng: jax.Array, *, row_multiple: int = 1,
                stddev: float | None = None, init: str = "normal",
                dtype=jnp.float32) -> dict[str, jax.Array]:
  """Gaussian tables; pad rows are zero.

  ``init="normal"``: N(0, stddev), stddev defaulting to 1/sqrt(D). ``init="xavier_normal"``:
  std sqrt(2 / (rows + D)) as torch's ``xavier_normal_`` on an [rows, D] weight, which is how
  SASRec's reference code initialises its item table (seq_baselines.md 2.1); for a 12k-item table
  that is ten times smaller than 1/sqrt(D), so the learned positions are not drowned out.
  """
  if init not in TABLE_INITS:
    raise ValueError(f"embedding init {init!r} is not one of {TABLE_INITS}")
  tables = {}
  for i, (name, t) in enumerate(sorted(spec.tables().items())):
    rows = padded_rows(t.num_rows, row_multiple)
    if init == "xavier_normal":
      std = float(np.sqrt(2.0 / (t.num_rows + t.dim)))
    else:
      std = stddev if stddev is not None else 1.0 / np.sqrt(t.dim)
    key = jax.random.fold_in(rng, i)
    if t.num_rows <= INIT_BLOCK_ROWS or not _blockwise_normal_ok(t.num_rows, t.dim, dtype):
      w = jax.random.normal(key, (t.num_rows, t.dim), dtype) * std
      tables[name] = jnp.pad(w, ((0, rows - t.num_rows), (0, 0)))
      continue
    # Block by block into one buffer: drawing a whole 10M-row table at once holds the threefry
    # state and the draw beside it (four table-sized buffers); the values are the same.
    table = jnp.zeros((rows, t.dim), dtype)
    for start in range(0, t.num_rows, INIT_BLOCK_ROWS):
      n = min(INIT_BLOCK_ROWS, t.num_rows - start)
      block = _normal_rows(key, np.uint32(start * t.dim), n, t.dim) * std
      table = _put_rows(table, block, start)
    tables[name] = table
  return tables


# Rows drawn per block when a table is initialised piecewise (32 MiB of fp32 at D = 32; the
# draw holds about three blocks of threefry state beside it, so the block sets the init peak).
INIT_BLOCK_ROWS = 1 << 18


def _blockwise_normal_ok(num_rows: int, dim: int, dtype) -> bool:
  """Whether ``_normal_rows`` reproduces ``jax.random.normal`` here: fp32, the default threefry
  key with partitionable counters (each value depends only on its flat index), < 2**32 values."""
  return (jnp.dtype(dtype) == jnp.float32 and jax.config.jax_threefry_partitionable and
          jax.config.jax_default_prng_impl == "threefry2x32" and num_rows * dim < 2 ** 32)


@functools.partial(jax.jit, static_argnums=(2, 3))
def _normal_rows(key, offset, n_rows, dim):
  """Rows of ``jax.random.normal(key, (R, dim), float32)`` starting at flat index ``offset``, bit
  for bit (tests/layers/test_embedding.py checks it against the whole draw)."""
  from jax.extend.random import threefry2x32_p  # pylint: disable=g-import-not-at-top
  k1, k2 = jax.random.key_data(key)
  lo = (offset + jax.lax.iota(jnp.uint32, n_rows * dim)).reshape(n_rows, dim)
  b1, b2 = threefry2x32_p.bind(k1, k2, jnp.zeros_like(lo), lo)
  # jax.random.uniform(key, shape, f32, nextafter(-1, 0), 1), then sqrt(2) * erfinv.
  bits = jax.lax.shift_right_logical(b1 ^ b2, jnp.uint32(32 - 23))
  bits = jax.lax.bitwise_or(bits, jnp.asarray(np.array(1.0, np.float32).view(np.uint32)))
  floats = jax.lax.bitcast_convert_type(bits, jnp.float32) - jnp.array(1.0, jnp.float32)
  lo_v = np.nextafter(np.float32(-1.0), np.float32(0.0), dtype=np.float32)
  minval = jnp.asarray(lo_v, jnp.float32).reshape(1, 1)
  maxval = jnp.asarray(1.0, jnp.float32).reshape(1, 1)
  u = jax.lax.max(minval, floats * (maxval - minval) + minval)
  return jax.lax.mul(np.array(np.sqrt(2), np.float32), jax.lax.erf_inv(u))


@functools.partial(jax.jit, donate_argnums=0)
def _put_rows(table, block, start):
  return jax.lax.dynamic_update_slice(table, block, (start, 0))


def table_ids(spec: F.FeatureSpec, batch: Mapping[str, jax.Array],
              sentinels: Mapping[str, int] | None = None) -> dict[str, jax.Array]:
  """Flat int32 ids per table, concatenating its features in spec order.

  With ``sentinels`` (table -> row count), ids at masked bag/sequence positions and in padded
  rows (``example_mask == 0``) become the sentinel: they read as zero rows and no optimizer
  touches their table row (lazy Adam would otherwise move row 0 on every padded batch).
  """
  out: dict[str, list] = {}
  row_ok = batch.get(F.EXAMPLE_MASK) if sentinels is not None else None
  for f in spec.id_features:
    ids = batch[f.name].astype(jnp.int32)
    if sentinels is not None:
      ok = jnp.ones(ids.shape, bool)
      if f.kind in (F.BAG, F.SEQUENCE):
        ok = batch[f.mask_name] > 0
      if row_ok is not None:
        ok = ok & (row_ok.reshape((-1,) + (1,) * (ids.ndim - 1)) > 0)
      ids = jnp.where(ok, ids, sentinels[f.table_name])
    out.setdefault(f.table_name, []).append(ids.reshape(-1))
  return {t: jnp.concatenate(v) if len(v) > 1 else v[0] for t, v in out.items()}


def dedupe(ids: jax.Array, sentinel: int) -> tuple[jax.Array, jax.Array]:
  """Sorted unique ids padded with ``sentinel`` to the static size ``len(ids)``, and the inverse
  (``jnp.unique(..., size=len(ids), fill_value=sentinel, return_inverse=True)``); ``sentinel`` is
  larger than every id."""
  uniq, inverse = dedupe_rows(ids.reshape(1, -1), jnp.asarray([sentinel], jnp.int32),
                              max_id=int(sentinel))
  return uniq[0], inverse[0]


def dedupe_rows(ids: jax.Array, sentinels: jax.Array, max_id: int | None = None
                ) -> tuple[jax.Array, jax.Array]:
  """``dedupe`` of every row of ``ids [T, N]`` at once (row t padded with ``sentinels[t]``, which
  is larger than every id of the row).

  The same result as ``jnp.unique`` row by row, from one batched sort of a single key: XLA:CPU
  calls a compiled comparator per comparison, and sorting (id, position) pairs took 4-5x as long
  as sorting the ids alone (issue 17). ``max_id`` (an upper bound of the ids known when tracing,
  e.g. the largest table size): when its bits and the position's fit in 32, id and position are
  packed into one uint32 key, else the ids are sorted alone and each id finds its slot by binary
  search in its row's unique ids.
  """
  t, n = ids.shape
  ids = ids.astype(jnp.int32)
  pos_bits = max(n - 1, 1).bit_length()
  packed = max_id is not None and max(int(max_id), 1).bit_length() + pos_bits <= 32
  if packed:
    iota = jax.lax.broadcasted_iota(jnp.uint32, ids.shape, 1)
    key = jax.lax.sort((ids.astype(jnp.uint32) << pos_bits) | iota, dimension=1)
    srt = (key >> pos_bits).astype(jnp.int32)
    perm = (key & jnp.uint32((1 << pos_bits) - 1)).astype(jnp.int32)
  else:
    srt = jax.lax.sort(ids, dimension=1)
  first = jnp.concatenate([jnp.ones((t, 1), bool), srt[:, 1:] != srt[:, :-1]], axis=1)
  slot = jnp.cumsum(first.astype(jnp.int32), axis=1) - 1  # unique index of each sorted id
  row = jax.lax.broadcasted_iota(jnp.int32, ids.shape, 0)
  fill = jnp.broadcast_to(jnp.asarray(sentinels, jnp.int32)[:, None], ids.shape)
  # Only the first of each run writes, so every written index is distinct.
  uniq = fill.at[row, jnp.where(first, slot, n)].set(srt, mode="drop", unique_indices=True)
  if packed:
    inverse = jnp.zeros_like(ids).at[row, perm].set(slot, unique_indices=True)
  else:
    # The sentinel padding sorts after every id, so the first match is the id's own slot.
    inverse = jax.vmap(lambda u, x: jnp.searchsorted(u, x, method="scan"))(uniq, ids)
  return uniq, inverse.astype(jnp.int32)


def dedupe_tables(ids: Mapping[str, jax.Array], sentinels: Mapping[str, int]
                  ) -> dict[str, tuple[jax.Array, jax.Array]]:
  """``{table: dedupe(ids[table], sentinels[table])}``, tables with equal id counts batched."""
  groups: dict[int, list[str]] = {}
  for name, v in ids.items():
    groups.setdefault(v.shape[0], []).append(name)
  out = {}
  with jax.named_scope("dedupe"):
    for names in groups.values():
      if len(names) == 1:
        out[names[0]] = dedupe(ids[names[0]], sentinels[names[0]])
        continue
      uniq, inverse = dedupe_rows(jnp.stack([ids[t].astype(jnp.int32) for t in names]),
                                  jnp.asarray([sentinels[t] for t in names], jnp.int32),
                                  max_id=max(int(sentinels[t]) for t in names))
      out.update({t: (uniq[i], inverse[i]) for i, t in enumerate(names)})
  return out


def _local_gather(table, ids, axis):
  shard_rows = table.shape[0]
  start = jax.lax.axis_index(axis) * shard_rows
  local = ids - start
  ok = (local >= 0) & (local < shard_rows)
  rows = jnp.take(table, jnp.where(ok, local, 0), axis=0)
  rows = jnp.where(ok[:, None], rows, jnp.zeros((), table.dtype))
  return jax.lax.psum(rows, axis)


def gather_rows(table: jax.Array, ids: jax.Array, *, mesh=None, sharded: bool = False) -> jax.Array:
  """``table[ids]`` with out-of-range ids (the dedupe sentinel) reading as zero rows.

  Ids must already be validated on the host; the only out-of-range ids here are padding.
  """
  with jax.named_scope("gather"):
    if not sharded or mesh is None or mesh.shape.get(MODEL_AXIS, 1) == 1:
      return jnp.take(table, ids, axis=0, mode="fill", fill_value=0)
    fn = jax.shard_map(functools.partial(_local_gather, axis=MODEL_AXIS), mesh=mesh,
                       in_specs=(P(MODEL_AXIS, None), P()), out_specs=P(), check_vma=False)
    return fn(table, ids)


def _pool(e: jax.Array, mask: jax.Array, pooling: str) -> jax.Array:
  m = mask.astype(e.dtype)[..., None]
  if pooling == "none":
    return e * m
  s = (e * m).sum(axis=-2)
  if pooling == "mean":
    s = s / jnp.maximum(m.sum(axis=-2), 1.0)
  return s


@jax.named_scope("assemble")
def assemble(spec: F.FeatureSpec, rows: Mapping[str, jax.Array], inverse: Mapping[str, jax.Array],
             batch: Mapping[str, jax.Array], *, in_bounds: bool | frozenset = False
             ) -> dict[str, jax.Array]:
  """Per-feature embeddings from deduplicated rows: ``[B, D]`` (sparse, pooled bag) or ``[B, L, D]``.

  ``in_bounds``: every inverse index is a valid row of ``rows`` (true of ``dedupe``'s inverse), so
  the gather skips its bounds test; otherwise an out-of-range index reads as a zero row. True for
  every table, or the set of tables for which it holds (raw ids with sentinels do not).
  """
  offsets: dict[str, int] = {}
  emb = {}
  for f in spec.id_features:
    t = f.table_name
    shape = batch[f.name].shape
    n = int(np.prod(shape))
    start = offsets.get(t, 0)
    offsets[t] = start + n
    idx = inverse[t][start:start + n]
    if in_bounds is True or (not isinstance(in_bounds, bool) and t in in_bounds):
      e = rows[t].at[idx].get(mode="promise_in_bounds")
    else:
      e = jnp.take(rows[t], idx, axis=0, mode="fill", fill_value=0)
    e = e.reshape(shape + (-1,))
    if f.kind == F.BAG:
      e = _pool(e, batch[f.mask_name], f.pooling)
    elif f.kind == F.SEQUENCE:
      e = e * batch[f.mask_name].astype(e.dtype)[..., None]
    emb[f.name] = e
  return emb


def lookup(spec: F.FeatureSpec, tables: Mapping[str, jax.Array],
           batch: Mapping[str, jax.Array]) -> dict[str, jax.Array]:
  """Plain (dense-gradient) lookup of every id feature: the reference path and the small-table path."""
  ids = table_ids(spec, batch)
  rows = {t: tables[t] for t in ids}
  inverse = {t: v for t, v in ids.items()}
  return assemble(spec, rows, inverse, batch)


def table_partition_specs(tables: Mapping[str, jax.Array], *, min_rows_to_shard: int,
                          model_axis_size: int) -> dict[str, P]:
  """Row-shard tables with at least ``min_rows_to_shard`` rows over ``model``; replicate the rest."""
  out = {}
  for name, t in tables.items():
    shard = model_axis_size > 1 and t.shape[0] >= min_rows_to_shard
    if shard and t.shape[0] % model_axis_size:
      raise ValueError(f"table {name!r} has {t.shape[0]} rows, not divisible by the model axis "
                       f"({model_axis_size}); initialise with row_multiple={model_axis_size}")
    out[name] = P(MODEL_AXIS, None) if shard else P()
  return out
