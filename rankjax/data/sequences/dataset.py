"""A sequential dataset for one model family, built from any ``Sequences``.

The shipped Amazon sets (rankjax/data/amazon.py) and a user's own file
(rankjax/data/sequences/sequence_file.py) both end here, so every sequential model and experiment
config accepts either by name.
"""
from __future__ import annotations

import functools
from typing import Callable, Iterable, Mapping

import numpy as np

from rankjax.data import features as F
from rankjax.data import pipeline
from rankjax.data import registry
from rankjax.data.sequences import examples as E
from rankjax.data.sequences.core import Sequences
from rankjax.data.sequences.core import data_report
from rankjax.data.sequences.loo import LeaveOneOut
from rankjax.data.sequences.loo import VALIDATION
from rankjax.data.sequences.loo import eval_columns

EXAMPLES = ("sasrec", "bert4rec", "semantic_id", "tiger")
# Options of `build` (every sequential dataset accepts them); `name` is the registry's own key.
OPTIONS = ("example", "max_len", "dim", "loss", "num_negatives", "mask_prob", "max_predictions",
           "sliding_step", "max_users", "min_len", "time", "pack_loss")
_ALWAYS = ("name",)


def get(cfg, key, default):
  if cfg is None:
    return default
  if isinstance(cfg, Mapping):
    return cfg.get(key, default)
  return getattr(cfg, key, default) if hasattr(cfg, key) else default


def check_options(cfg, allowed: Iterable[str], dataset: str) -> None:
  """Rejects a key the loader does not read: a misspelt option (``max_lenn``) must not silently
  train with the default."""
  if cfg is None:
    return
  keys = set(cfg.keys()) if hasattr(cfg, "keys") else set()
  unknown = sorted(keys - set(allowed) - set(_ALWAYS))
  if unknown:
    raise ValueError(f"dataset {dataset!r}: unknown option(s) {unknown}; valid options are "
                     f"{sorted(set(allowed))}")


def sequence_spec(example: str, num_items: int, max_len: int, dim: int, *, timed: bool,
                  loss: str, num_negatives: int, sid_levels: int = 0) -> F.FeatureSpec:
  seq = lambda name, vocab, length, table: F.Feature(name, F.SEQUENCE, vocab, table, dim, "none",
                                                     length)
  feats = []
  if example == "sasrec":
    feats.append(seq("item_seq", num_items + 1, max_len, "item"))
    feats.append(seq("pos_items", num_items + 1, max_len, "item"))
    if loss == "bce":
      feats.append(seq("neg_items", num_items + 1, max_len * num_negatives, "item"))
  elif example == "bert4rec":
    feats.append(seq("item_seq", num_items + 2, max_len, "item"))     # + [mask] = N + 1
  else:
    feats.append(seq("sid_seq", E.sid_vocab_size(sid_levels), max_len * sid_levels, "sid_token"))
  if timed:
    feats.append(F.Feature("item_seq_ts", F.TIMESTAMP))
  return F.FeatureSpec(tuple(feats))


def _empty_targets(rows: int, max_len: int, num_negatives: int) -> dict[str, np.ndarray]:
  out = {"pos_items": np.zeros((rows, max_len), np.int32),
         "pos_items_mask": np.zeros((rows, max_len), np.float32)}
  if num_negatives:
    out["neg_items"] = np.zeros((rows, max_len * num_negatives), np.int32)
    out["neg_items_mask"] = np.zeros((rows, max_len * num_negatives), np.float32)
  return out


def build(name: str, seqs: Sequences, cfg=None, *, variant: str = "",
          sid_codes: Callable[[], np.ndarray] | None = None, report: dict | None = None,
          extra_info: Mapping | None = None) -> registry.Dataset:
  """A sequential data set ready for one model family.

  Config keys (all optional): ``example`` (sasrec | bert4rec | semantic_id | tiger: semantic-ID
  rows with one row per train target and a ``target`` column), ``max_len`` (50),
  ``dim`` (64), ``loss`` (bce | ce, SASRec), ``num_negatives`` (1), ``mask_prob`` (0.6),
  ``max_predictions`` (30), ``sliding_step`` (0.1 L), ``pack_loss`` (True: SASRec-CE and BERT4Rec
  batches list their supervised slots, ``examples.pack_slots``, so the full-vocabulary loss skips
  the rest; False scores every slot, same loss), ``max_users`` (first users only, e.g. 500
  for runlocal), ``min_len`` (4), ``time`` (True: add ``item_seq_ts`` when the data set has time).
  ``sid_codes()`` returns the semantic-ID table for ``example="semantic_id"`` and ``"tiger"``.

  ``splits``: ``train`` (base rows; use ``info["train_source"]`` for batches), ``validation``,
  ``test`` (one row per evaluated user; SASRec's carry zero target columns so that the same spec
  applies). ``info`` holds counts (``num_users``, ``num_items``, ``train_rows``, ``eval_users``),
  the data report, the variant label and, for semantic IDs, ``constant_tables``
  (``{"item_codes": int32 [N + 1, M]}``) and ``codebook_sizes``.
  """
  example = get(cfg, "example", "sasrec")
  if example not in EXAMPLES:
    raise ValueError(f"{name}: example {example!r} is not one of {EXAMPLES}")
  max_len = int(get(cfg, "max_len", 50))
  dim = int(get(cfg, "dim", 64))
  loss = get(cfg, "loss", "bce")
  if loss not in ("bce", "ce"):
    raise ValueError(f"{name}: loss {loss!r} is not 'bce' or 'ce'")
  k_neg = int(get(cfg, "num_negatives", 1))
  full_report = report if report is not None else data_report(seqs)
  max_users = get(cfg, "max_users", None)
  if max_users:
    seqs = seqs.select(np.arange(min(int(max_users), seqs.num_users)))
  loo = LeaveOneOut(seqs, int(get(cfg, "min_len", 4)))
  timed = seqs.ts is not None and bool(get(cfg, "time", True))
  n = seqs.num_items
  info = {"num_items": n, "num_users": seqs.num_users, "variant": variant, "report": full_report,
          "example": example, "time_origin": seqs.time_origin if timed else None,
          "max_len": max_len, "eval_users": int(loo.evaluated.sum()), **dict(extra_info or {})}
  levels = 0
  if example in ("semantic_id", "tiger"):
    if sid_codes is None:
      raise ValueError(f"{name}: no semantic IDs ship for this data set (seq_data.md 5)")
    codes = sid_codes()
    levels = codes.shape[1]
    tokens = E.sid_tokens(codes)
    info.update(constant_tables={"item_codes": codes}, codebook_sizes=E.codebook_sizes(codes),
                sid_levels=levels)
    train = E.rpg_rows(loo, max_len) if example == "semantic_id" else E.tiger_rows(loo, max_len)
    valid = eval_columns(loo, VALIDATION, max_len, align="left")
    test = eval_columns(loo, "test", max_len, align="left")
    train, valid, test = (E.with_sid(c, tokens) for c in (train, valid, test))
    make = None
  elif example == "bert4rec":
    mask_token = n + 1
    info["mask_token"] = mask_token
    train = E.bert4rec_rows(loo, max_len, get(cfg, "sliding_step", None))
    valid = eval_columns(loo, VALIDATION, max_len, append_token=mask_token)
    test = eval_columns(loo, "test", max_len, append_token=mask_token)
    make = functools.partial(E.bert4rec_batch, mask_token=mask_token,
                             mask_prob=float(get(cfg, "mask_prob", 0.6)),
                             max_predictions=int(get(cfg, "max_predictions", 30)),
                             pack=bool(get(cfg, "pack_loss", True)))
  else:
    train = E.sasrec_rows(loo, max_len)
    valid = eval_columns(loo, VALIDATION, max_len)
    test = eval_columns(loo, "test", max_len)
    for c in (valid, test):
      # Zero target columns, so that one FeatureSpec serves training and evaluation lookups.
      c.update(_empty_targets(len(c["target"]), max_len, k_neg if loss == "bce" else 0))
    make = functools.partial(E.sasrec_batch, num_items=n, pair_keys=E.train_pair_keys(loo),
                             num_negatives=k_neg, loss=loss, pack=bool(get(cfg, "pack_loss", True)))
  if not timed:
    for c in (train, valid, test):
      c.pop("item_seq_ts", None)
  info["train_rows"] = len(train["user"])
  spec = sequence_spec(example, n, max_len, dim, timed=timed, loss=loss, num_negatives=k_neg,
                       sid_levels=levels)
  info["train_source"] = lambda batch_size, seed=0: pipeline.ArraySource(
      train, batch_size, seed=seed, make=make, name=f"{name}/train")
  return registry.Dataset(name, spec, {"train": train, VALIDATION: valid, "test": test}, None,
                          info)
