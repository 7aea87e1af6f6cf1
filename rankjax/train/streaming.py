"""Streaming (online) training: train one pass on time chunk k, evaluate on chunk k+1.

The event stream is the dataset split ``config.streaming.split`` sorted by ``dataset.time_field``.
It is cut into fixed time windows (``chunk_seconds``) or ``num_chunks`` equal windows. Evaluation
of chunk k+1 uses the rows where ``config.streaming.eval_filter`` is 1 (e.g. clicks, whose labels
are complete in the prepared data) or all rows. Per-chunk metrics and their mean are reported
(framework.md section 5). The global step fixes the chunk and the batch inside it, so a killed
run resumes exactly like the offline loop.
"""
from __future__ import annotations

import numpy as np

from rankjax.data import features as F
from rankjax.data import pipeline
from rankjax.train import plots
from rankjax.train import trainer as T


def chunk_bounds(ts: np.ndarray, *, chunk_seconds: float = 0.0, num_chunks: int = 0) -> np.ndarray:
  """Row offsets ``[K+1]`` of time windows over sorted timestamps ``ts`` (empty windows dropped)."""
  if (chunk_seconds > 0) == (num_chunks > 0):
    raise ValueError("streaming: set exactly one of chunk_seconds > 0 or num_chunks > 0 "
                     f"(got chunk_seconds={chunk_seconds}, num_chunks={num_chunks})")
  t0, t1 = float(ts[0]), float(ts[-1])
  if num_chunks:
    edges = np.linspace(t0, t1, num_chunks + 1)[1:-1]
  else:
    edges = np.arange(t0 + chunk_seconds, t1 + chunk_seconds, chunk_seconds)
  cuts = np.searchsorted(ts, edges, side="left")
  bounds = np.unique(np.concatenate([[0], cuts, [len(ts)]]))
  return bounds


def sort_stream(columns: dict, time_field: str) -> dict:
  ts = np.asarray(columns[time_field])
  if np.all(ts[1:] >= ts[:-1]):
    return dict(columns)
  order = np.argsort(ts, kind="stable")
  return {k: np.asarray(v)[order] for k, v in columns.items()}


def train_streaming(config, workdir: str, dataset=None) -> dict:
  scfg = config.streaming
  s = T.setup(config, workdir, dataset)
  ds = s.dataset
  if not ds.time_field:
    raise ValueError(f"dataset {ds.name!r} has no time_field; streaming training needs one")
  split = scfg.split
  stream = sort_stream(ds.splits[split], ds.time_field)
  bounds = chunk_bounds(np.asarray(stream[ds.time_field]), chunk_seconds=scfg.chunk_seconds,
                        num_chunks=scfg.num_chunks)
  num_chunks = len(bounds) - 1
  if num_chunks < 2:
    raise ValueError(f"streaming: the stream splits into {num_chunks} chunk(s); need at least 2")
  chunk = lambda k: {c: v[bounds[k]:bounds[k + 1]] for c, v in stream.items()}
  bsz = config.train.batch_size
  sources = [pipeline.ArraySource(chunk(k), bsz, seed=config.seed * 100_003 + k,
                                  name=f"{ds.name}/chunk{k}") for k in range(num_chunks - 1)]
  offsets = np.concatenate([[0], np.cumsum([src.steps_per_epoch for src in sources])])
  total = int(offsets[-1])
  runner = T.StepRunner(s, total)
  s.loop_state.setdefault("chunks", [])
  eval_filter = scfg.eval_filter

  def eval_rows(k):
    if not eval_filter:
      return int(bounds[k + 1] - bounds[k])
    return int((np.asarray(stream[eval_filter][bounds[k]:bounds[k + 1]]) > 0).sum())

  def eval_chunk(k):
    cols = chunk(k)
    if eval_filter:
      keep = np.asarray(cols[eval_filter]) > 0
      cols = {c: v[keep] for c, v in cols.items()}
    if not len(next(iter(cols.values()))):
      return {}
    return T.evaluate(s, cols, f"chunk{k}")

  while len(s.loop_state["chunks"]) < num_chunks - 1:
    k = len(s.loop_state["chunks"])
    start = int(s.state.step) - int(offsets[k])
    src = sources[k]
    make = lambda i, src=src: s.put(F.validate_batch(ds.spec, src.batch(i), source=src.name,
                                                     label_domains=s.label_domains))
    if start < src.steps_per_epoch:
      # The chunk's last step is saved below, after its evaluation is in the loop state.
      runner.run(pipeline.prefetch(make, range(start, src.steps_per_epoch)),
                 no_save_at=frozenset({int(offsets[k + 1])}))
    m = eval_chunk(k + 1)
    step = int(offsets[k + 1])
    s.writer.write(step, "chunk", {"chunk": k + 1, "rows": int(bounds[k + 2] - bounds[k + 1]),
                                   "eval_rows": eval_rows(k + 1), **m})
    s.loop_state["chunks"].append({"chunk": k + 1, "step": step, **m})
    s.checkpointer.save(step, s.state, s.loop_state, force=True)
  runner.close()
  s.checkpointer.wait()
  chunks = s.loop_state["chunks"]
  keys = sorted({k for c in chunks for k in c if k not in ("chunk", "step")})
  metrics = {f"stream/{k}": float(np.nanmean([c.get(k, np.nan) for c in chunks])) for k in keys}
  for c in chunks:
    metrics.update({f"chunk{c['chunk']}/{k}": v for k, v in c.items() if k not in ("chunk", "step")})
  plots.plot_chunks(workdir, chunks)  # before finish_run, which releases the workdir lock
  return T.finish_run(s, metrics, int(s.state.step), runner.examples_per_sec)
