"""Amazon Beauty/Toys loaders, splits and example builders (seq_data.md 8, seq_cape.md 9.10).

Tests on the shared files are skipped when the data is absent; the rest use tiny synthetic sequences
(never rows copied from the data: seq_data.md licence note).
"""
import hashlib
import os

import numpy as np
import pytest

from rankjax.data import amazon as D
from rankjax.data import features as F
from rankjax.data import pipeline
from rankjax.data import registry

HAVE_DATA = os.path.exists(D.data_path("SHA256SUMS"))
needs_data = pytest.mark.skipif(not HAVE_DATA, reason="shared Amazon data not available")


# ---- synthetic ----------------------------------------------------------------------------------

def synthetic(seqs, ts=None, num_items=None):
  per_user = [(u + 1, list(s), None if ts is None else list(ts[u])) for u, s in enumerate(seqs)]
  return D._csr("synthetic", per_user, num_items)


A, B, C, DD, E_, G = 1, 2, 3, 4, 5, 6


def test_split_on_a_synthetic_user():
  seqs = synthetic([[A, B, C, DD, E_], [A, B, C]], num_items=6)
  loo = D.LeaveOneOut(seqs)
  np.testing.assert_array_equal(loo.evaluated, [True, False])
  rows = D.sasrec_rows(loo, 3)
  np.testing.assert_array_equal(rows["item_seq"][0], [0, A, B])
  np.testing.assert_array_equal(rows["pos_items"][0], [0, B, C])
  np.testing.assert_array_equal(rows["item_seq"][1], [0, A, B])  # n = 3: all train, no eval
  np.testing.assert_array_equal(rows["pos_items"][1], [0, B, C])
  valid = D.eval_columns(loo, "valid", 3)
  test = D.eval_columns(loo, "test", 3)
  np.testing.assert_array_equal(valid["item_seq"], [[A, B, C]])
  np.testing.assert_array_equal(valid["target"], [DD])
  np.testing.assert_array_equal(test["item_seq"], [[B, C, DD]])
  np.testing.assert_array_equal(test["target"], [E_])
  np.testing.assert_array_equal(test["history"][0][:5], [A, B, C, DD, E_])


def test_timestamps_follow_their_items_and_target_time_never_leaks():
  ts = [[10, 20, 30, 40, 50]]
  seqs = synthetic([[A, B, C, DD, E_]], ts=[np.array(t) * 86400 for t in ts], num_items=6)
  loo = D.LeaveOneOut(seqs)
  test = D.eval_columns(loo, "test", 4)
  np.testing.assert_array_equal(test["item_seq_ts"][0] // 86400, [10, 20, 30, 40])
  bert = D.eval_columns(loo, "test", 4, append_token=7)
  np.testing.assert_array_equal(bert["item_seq"][0], [B, C, DD, 7])
  np.testing.assert_array_equal(bert["item_seq_ts"][0] // 86400, [20, 30, 40, 40])


def test_rpg_windows_cover_every_target_once():
  seqs = synthetic([list(range(1, 10)), [3, 4, 5, 6, 7]], num_items=9)
  loo = D.LeaveOneOut(seqs)
  rows = D.rpg_rows(loo, 3)                                 # train parts: 1..7 and 3..5
  np.testing.assert_array_equal(rows["item_seq"][0], [1, 2, 3])
  np.testing.assert_array_equal(rows["next_items"][0], [2, 3, 4])
  np.testing.assert_array_equal(rows["item_seq"][1], [2, 3, 4])
  np.testing.assert_array_equal(rows["next_items"][1], [0, 0, 5])
  labels = rows["next_items"][rows["user"] == 0]
  assert sorted(labels[labels > 0].tolist()) == [2, 3, 4, 5, 6, 7]
  np.testing.assert_array_equal(rows["item_seq"][-1], [3, 4, 0])     # left-aligned
  np.testing.assert_array_equal(rows["next_items"][-1], [4, 5, 0])


def test_bert4rec_masking_statistics_and_windows():
  rng = np.random.default_rng(0)
  lens = rng.integers(5, 51, 400)
  seqs = synthetic([list(rng.permutation(np.arange(1, 60))[:n]) for n in lens], num_items=60)
  loo = D.LeaveOneOut(seqs)
  rows = D.bert4rec_rows(loo, 50)
  out = D.bert4rec_batch(rows, np.random.default_rng(1), mask_token=61)
  masked = out["mlm_weights"].sum()
  assert masked / (rows["item_seq"] > 0).sum() == pytest.approx(0.6, abs=0.02)
  assert out["mlm_weights"].sum(1).max() <= 30
  sel = out["mlm_weights"] > 0
  pos = out["mlm_positions"][sel]
  row = np.nonzero(sel)[0]
  np.testing.assert_array_equal(out["item_seq"][row, pos], 61)
  np.testing.assert_array_equal(rows["item_seq"][row, pos], out["mlm_labels"][sel])
  again = D.bert4rec_batch(rows, np.random.default_rng(1), mask_token=61)
  np.testing.assert_array_equal(again["item_seq"], out["item_seq"])
  # A train part of 70 items with L = 50 gives windows ending at 70, 65, .., 55 and 50.
  long = D.LeaveOneOut(synthetic([list(range(1, 73))], num_items=72))
  w = D.bert4rec_rows(long, 50)
  np.testing.assert_array_equal(w["item_seq"][:, -1], [70, 65, 60, 55, 50])


def test_train_source_is_a_function_of_seed_and_step():
  rng = np.random.default_rng(0)
  seqs = synthetic([list(rng.permutation(np.arange(1, 31))[:n]) for n in rng.integers(5, 20, 40)],
                   num_items=30)
  loo = D.LeaveOneOut(seqs)
  rows = D.sasrec_rows(loo, 8)
  keys = D.train_pair_keys(loo)
  import functools
  make = functools.partial(D.sasrec_batch, num_items=30, pair_keys=keys)
  s1 = pipeline.ArraySource(rows, 16, seed=3, make=make)
  s2 = pipeline.ArraySource(rows, 16, seed=3, make=make)
  for step in (0, 2, 5):
    b1, b2 = s1.batch(step), s2.batch(step)
    for k in b1:
      np.testing.assert_array_equal(b1[k], b2[k])
  b = s2.batch(2)                                           # last batch of epoch 0: padded
  assert b["example_mask"].sum() == 40 - 32
  assert not np.array_equal(s1.batch(0)["neg_items"], s1.batch(3)["neg_items"])
  for i in range(16):
    if b["example_mask"][i]:
      u = b["user"][i]
      train_items = set(seqs.seq(u)[:loo.train_len[u]].tolist())
      negs = b["neg_items"][i][b["neg_items"][i] > 0]
      assert not train_items & set(negs.tolist())
      np.testing.assert_array_equal(b["neg_items"][i] > 0, b["pos_items"][i] > 0)


def test_malformed_lines_name_file_line_and_content(tmp_path):
  p = tmp_path / "t.txt"
  p.write_text("1 1 0\n1 2 x7\n")
  with pytest.raises(D.DataError, match=r"t\.txt:2: .*x7"):
    D.read_time_file(str(p))
  p.write_text("1 1 0\n1 2\n")
  with pytest.raises(D.DataError, match=r"t\.txt:2: expected 3 .*'1 2\\n'"):
    D.read_time_file(str(p))
  p.write_text("1 1 50\n1 2 40\n")
  with pytest.raises(D.DataError, match=r"t\.txt:2: time 40 < previous 50"):
    D.read_time_file(str(p))
  p.write_text("1 3 4 5\n3 1 2 3\n")
  with pytest.raises(D.DataError, match=r"t\.txt:2: user id 3"):
    D.read_sequence_file(str(p))


def test_dedup_codes_and_token_layout():
  codes = np.array([[1, 2], [3, 4], [1, 2], [1, 2], [3, 4], [0, 0]])
  out, info = D.dedup_codes(codes)
  np.testing.assert_array_equal(out[:, 2], [0, 0, 1, 2, 1, 0])
  assert info["collision_groups"] == 2 and info["collided_items"] == 5
  assert info["surplus_items"] == 3
  assert len(np.unique(out, axis=0)) == len(out)
  tok = D.sid_tokens(np.array([[-1, -1, -1], [1, 2, 0]]))
  np.testing.assert_array_equal(tok, [[0, 0, 0], [2, 259, 513]])
  assert D.sid_vocab_size(5) == 1282


def test_rq_index_is_read_by_key_not_position():
  raw = {"1": [5, 6, 7, 8], "0": [1, 2, 3, 4], "2": [9, 9, 9, 9]}
  shuffled = dict(reversed(list(raw.items())))
  np.testing.assert_array_equal(D.parse_rq_index(raw), D.parse_rq_index(shuffled))
  np.testing.assert_array_equal(D.parse_rq_index(raw)[0], [1, 2, 3, 4])


# ---- shared data --------------------------------------------------------------------------------

CARDS = {  # seq_data.md 2: users, items, interactions, min / median / max length
    "beauty": (22363, 12101, 198502, 5, 6, 204),
    "toys": (19412, 11924, 167597, 5, 6, 550),
}


@needs_data
@pytest.mark.parametrize("name", ["beauty", "toys"])
def test_counts_match_the_cards(name):
  timed = D.load_beauty_time() if name == "beauty" else D.load_toys_reltime()
  for seqs in (D.load_s3rec(name), timed):
    st = D.length_stats(seqs)
    got = (st["users"], st["items"], st["interactions"], st["min_len"], st["median_len"],
           st["max_len"])
    assert got == CARDS[name]
  assert timed.time_origin == ("unix" if name == "beauty" else "user_start")
  if name == "toys":
    assert (timed.ts[timed.offsets[:-1]] == 0).all()
    assert timed.ts.max() == 435628800 and (timed.ts % 86400 == 0).all()
  else:
    assert timed.ts.min() == 1023840000 and timed.ts.max() == 1406073600


@needs_data
def test_checksums_and_line_counts():
  for rel, lines in (("amazon_beauty_5core_time/Beauty_5_time.txt", 198502),
                     ("amazon_toys_5core_reltime/Toys_and_Games_5_reltime.txt", 167597),
                     ("amazon_s3rec_splits/Beauty.txt", 22363),
                     ("amazon_s3rec_splits/Toys_and_Games.txt", 19412)):
    with open(D.verify(rel)) as f:
      assert sum(1 for _ in f) == lines


def test_checksum_mismatch_fails_loudly(tmp_path, monkeypatch):
  (tmp_path / "data" / "x").mkdir(parents=True)
  (tmp_path / "data" / "x" / "f.txt").write_text("hello\n")
  good = hashlib.sha256(b"hello\n").hexdigest()
  (tmp_path / "data" / "SHA256SUMS").write_text(f"{'0' * 64}  x/f.txt\n")
  monkeypatch.setenv("RANKJAX_SHARED", str(tmp_path))
  D._sha256sums.cache_clear()
  try:
    with pytest.raises(D.DataError, match="sha256 mismatch"):
      D.verify("x/f.txt")
    (tmp_path / "data" / "SHA256SUMS").write_text(f"{good}  x/f.txt\n")
    D._sha256sums.cache_clear()
    assert D.verify("x/f.txt").endswith("f.txt")
  finally:
    D._sha256sums.cache_clear()


@needs_data
def test_tie_statistics():
  b = D.tie_stats(D.load_beauty_time())
  assert b["zero_gap_fraction"] == pytest.approx(0.439, abs=1e-3)
  assert b["users_last_two_same_day"] == 9719
  assert b["users_last_two_same_day_fraction"] == pytest.approx(0.435, abs=1e-3)
  assert b["users_valid_and_last_train_same_day_fraction"] == pytest.approx(0.477, abs=1e-3)
  assert b["users_with_same_day_pair"] == 19586
  assert b["resort_changes_test_target"] == pytest.approx(0.251, abs=1e-3)
  assert b["resort_changes_valid_target"] == pytest.approx(0.387, abs=1e-3)
  t = D.tie_stats(D.load_toys_reltime())
  assert t["users_last_two_same_day"] == 9518 and t["users_with_same_day_pair"] == 17421
  assert t["zero_gap_fraction"] == pytest.approx(0.469, abs=1e-3)


@needs_data
def test_shuffling_within_a_day_is_rejected(tmp_path):
  seqs = D.load_beauty_time()
  users = 60
  lines = []
  swapped = False
  for u in range(users):
    its, ts = seqs.seq(u).tolist(), seqs.times(u).tolist()
    for j in range(len(its) - 1):
      if not swapped and ts[j] == ts[j + 1]:
        its[j], its[j + 1] = its[j + 1], its[j]
        swapped = True
    lines += [f"{u + 1} {i} {t}" for i, t in zip(its, ts)]
  assert swapped
  p = tmp_path / "shuffled.txt"
  p.write_text("\n".join(lines) + "\n")
  reloaded = D.read_time_file(str(p))                       # times are still non-decreasing...
  with pytest.raises(D.DataError, match="canonical S3Rec order"):
    D.check_same_sequences(reloaded, D.load_s3rec("beauty").select(np.arange(users)))


@needs_data
@pytest.mark.parametrize("name,supervised", [("beauty", 131413), ("toys", 109361)])
def test_leave_one_out_on_the_real_data(name, supervised):
  seqs = D.load_beauty_time() if name == "beauty" else D.load_toys_reltime()
  loo = D.LeaveOneOut(seqs)
  assert loo.evaluated.all()
  rows = D.sasrec_rows(loo, 600)
  assert int((rows["pos_items"] > 0).sum()) == supervised
  truncated = int((D.sasrec_rows(loo, 50)["pos_items"] > 0).sum())
  assert truncated < supervised
  valid = D.eval_columns(loo, "valid", 50)
  test = D.eval_columns(loo, "test", 50)
  assert len(valid["target"]) == len(test["target"]) == seqs.num_users
  np.testing.assert_array_equal(test["item_seq"][:, -1], valid["target"])
  last = seqs.offsets[1:] - 1
  np.testing.assert_array_equal(test["target"], seqs.items[last])
  np.testing.assert_array_equal(test["item_seq_ts"][:, -1], seqs.ts[last - 1])
  if name == "beauty":
    assert int(test["same_day"].sum()) == 9719


@needs_data
def test_letter_sids():
  codes, info = D.load_letter_sids()
  assert codes.shape == (12102, 5)
  np.testing.assert_array_equal(codes[0], -1)
  assert len(np.unique(codes[1:], axis=0)) == 12101
  assert info["distinct_tuples"] == 12088
  assert info["collided_items"] == 24 and info["collision_groups"] == 11
  assert info["surplus_items"] == 13
  four = codes[1:, :4]
  _, inv, counts = np.unique(four, axis=0, return_inverse=True, return_counts=True)
  inv = inv.reshape(-1)
  for g in np.flatnonzero(counts > 1):
    members = np.flatnonzero(inv == g)                       # ascending item id
    np.testing.assert_array_equal(codes[1:][members, 4], np.arange(len(members)))
  assert D.codebook_sizes(codes) == (256, 256, 256, 256, 3)
  D.check_same_sequences(D.load_letter_inter(), D.load_s3rec("beauty"))


@needs_data
def test_rq_tables_and_mapping():
  for kind, prefixes in (("rqvae", 11412), ("rqkmeans", 7840)):
    codes, seqs = D.load_rq_sids(kind)
    assert codes.shape == (12101, 4) and len(np.unique(codes, axis=0)) == 12101
    assert len(np.unique(codes[:, :3], axis=0)) == prefixes
    assert D.length_stats(seqs)["interactions"] == 198502 and seqs.num_users == 22363
  rep = D.rq_alignment()
  assert rep["mapped_items"] == 12094
  assert rep["unmapped_s3rec_items"] == [11977, 11978, 11980, 11981, 11982, 12087, 12088]
  assert rep["unmapped_own_ids"] == [8698, 8717, 9645, 9647, 9649, 11845, 11846]
  assert rep["users_same_item_set"] == 22351
  assert rep["users_comparable"] == 22307 and rep["last_item_differs"] == 6423


@needs_data
def test_item_attributes():
  for name, n_attr, lo, hi in (("beauty", 637, 1, 6), ("toys", 1027, 2, 31)):
    offsets, attrs, n = D.load_item_attributes(name)
    per_item = np.diff(offsets)[1:]
    assert n == n_attr and per_item.min() == lo and per_item.max() == hi


@needs_data
@pytest.mark.parametrize("example", ["sasrec", "bert4rec", "semantic_id"])
def test_registered_dataset_batches_validate(example):
  assert "amazon_beauty" in registry._LOADERS and "amazon_toys" in registry._LOADERS
  cfg = {"name": "amazon_beauty", "example": example, "max_users": 40, "max_len": 10, "dim": 8}
  ds = D.build_dataset("amazon_beauty", cfg)
  src = ds.info["train_source"](16, seed=0)
  batch = F.validate_batch(ds.spec, src.batch(1), check_labels=False)
  assert batch["example_mask"].shape == (16,)
  for split in ("validation", "test"):
    cols = ds.splits[split]
    assert len(cols["target"]) == 40
    rows = {k: v[:5] for k, v in cols.items()}
    F.validate_batch(F.select(ds.spec, [f.name for f in ds.spec.features
                                        if f.name in rows]), rows, check_labels=False)
  if example == "semantic_id":
    assert ds.info["constant_tables"]["item_codes"].shape == (12102, 5)
    assert ds.info["codebook_sizes"] == (256, 256, 256, 256, 3)


@needs_data
def test_beauty_ctr_loo_build():
  seqs = D.load_s3rec("beauty")
  a = D.ctr_loo_rows(seqs)
  assert len(a["train"]["label"]) == 262826
  assert len(a["validation"]["label"]) == len(a["test"]["label"]) == 2 * 22363
  neg = a["train"]["label"] == 0
  users, items = a["train"]["user"][neg], a["train"]["target_item"][neg]
  keys = np.sort(seqs.row_of().astype(np.int64) * (seqs.num_items + 1) + seqs.items)
  assert not D._is_member(keys, users.astype(np.int64) * (seqs.num_items + 1) + items).any()
  b = D.ctr_loo_rows(seqs)
  digest = lambda s: hashlib.sha256(b"".join(np.ascontiguousarray(v).tobytes()
                                             for _, v in sorted(s.items()))).hexdigest()
  assert digest(a["train"]) == digest(b["train"]) and digest(a["test"]) == digest(b["test"])
  # The test history ends with the validation item.
  pos = a["test"]["label"] == 1
  np.testing.assert_array_equal(a["test"]["item_history"][pos][:, -1],
                                a["validation"]["target_item"][a["validation"]["label"] == 1])


def test_attribute_matrix_pads_the_csr_with_zeros():
  offsets = np.array([0, 0, 2, 3])               # item 0 (padding) has none
  m = D.attribute_matrix(offsets, np.array([4, 9, 5], np.int32))
  np.testing.assert_array_equal(m, [[0, 0], [4, 9], [5, 0]])
  assert m.dtype == np.int32
