"""Times RecBole's SASRec training on Amazon Beauty, for the comparison in scripts/bench_seq.py.

Run only from a separate throwaway venv (PyTorch is not a rankjax dependency; nothing in the
package or the tests imports this file):

    python3 -m venv /tmp/recbole_venv
    /tmp/recbole_venv/bin/pip install torch==2.13.0 recbole
    RANKJAX_SHARED=/work/shared /tmp/recbole_venv/bin/python scripts/bench_recbole_sasrec.py

Same data and dimensions as bench_seq.py: S3Rec-order Beauty (22,363 users, 12,101 items), hidden
64, 2 blocks, 1 head, FFN inner size 64 with ReLU (pmixer's 1x1 convs d -> d), dropout 0.5, max
length 50, batch 256, Adam lr 1e-3. Loss ``BPR`` with one uniform negative (the nearest RecBole
loss to SASRec's one-negative BCE; ``--loss=CE`` times RecBole's default full-softmax loss).

An example is one training row of RecBole's sequential dataloader: a right-padded history of up
to 50 items whose loss is taken at its last position. RecBole makes one such row per training
interaction (about 131k on Beauty), while bench_seq.py counts one row per user with a loss at every
position (about 5.9 targets per row on Beauty), so the printed supervised targets/s is the fairer
figure for "training work done"; the per-row figure compares raw step throughput on [256, 50]
sequences. The timed loop is RecBole's own ``Trainer._train_epoch`` body (dataloader with its
negative sampling, forward, backward, Adam step), after a warm-up.

The last line is ``recbole_sasrec_train_examples_per_sec: X``; pass X to
``bench_seq.py --recbole_examples_per_sec=X``.
"""
import argparse
import os
import tempfile
import time


def write_atomic(src: str, out_dir: str, name: str) -> int:
  """RecBole atomic ``<name>.inter`` from our "uid iid ts" file (file order kept)."""
  os.makedirs(os.path.join(out_dir, name), exist_ok=True)
  n = 0
  with open(src) as f, open(os.path.join(out_dir, name, f"{name}.inter"), "w") as g:
    g.write("user_id:token\titem_id:token\ttimestamp:float\n")
    for line in f:
      u, i, t = line.split()
      g.write(f"{u}\t{i}\t{t}\n")
      n += 1
  return n


def main():
  p = argparse.ArgumentParser()
  p.add_argument("--steps", type=int, default=150)
  p.add_argument("--warmup", type=int, default=5)
  p.add_argument("--batch_size", type=int, default=256)
  p.add_argument("--loss", default="BPR", choices=("BPR", "CE"))
  p.add_argument("--threads", type=int, default=0, help="torch threads (0: torch default)")
  p.add_argument("--model_only", action="store_true",
                 help="reuse one batch: times forward/backward/Adam without RecBole's dataloader")
  a = p.parse_args()

  import torch  # pylint: disable=g-import-not-at-top
  from recbole.config import Config  # pylint: disable=g-import-not-at-top
  from recbole.data import create_dataset, data_preparation  # pylint: disable=g-import-not-at-top
  from recbole.model.sequential_recommender import SASRec  # pylint: disable=g-import-not-at-top
  from recbole.utils import init_seed  # pylint: disable=g-import-not-at-top

  if a.threads:
    torch.set_num_threads(a.threads)
  shared = os.environ.get("RANKJAX_SHARED", os.path.join(os.path.dirname(__file__), "..", "..",
                                                         "shared"))
  src = os.path.join(shared, "data", "amazon_beauty_5core_time", "Beauty_5_time.txt")
  tmp = tempfile.mkdtemp(prefix="recbole_beauty_")
  rows = write_atomic(src, tmp, "beauty")
  neg = ({"distribution": "uniform", "sample_num": 1, "alpha": 1.0, "dynamic": False,
          "candidate_num": 0} if a.loss == "BPR" else None)
  cfg = dict(
      data_path=tmp, checkpoint_dir=os.path.join(tmp, "saved"), USER_ID_FIELD="user_id",
      ITEM_ID_FIELD="item_id", TIME_FIELD="timestamp",
      load_col={"inter": ["user_id", "item_id", "timestamp"]},
      user_inter_num_interval="[0,inf)", item_inter_num_interval="[0,inf)",
      MAX_ITEM_LIST_LENGTH=50, hidden_size=64, inner_size=64, n_layers=2, n_heads=1,
      hidden_dropout_prob=0.5, attn_dropout_prob=0.5, hidden_act="relu", layer_norm_eps=1e-8,
      initializer_range=0.02, loss_type=a.loss, train_neg_sample_args=neg,
      train_batch_size=a.batch_size, learning_rate=1e-3, epochs=1,
      eval_args={"split": {"LS": "valid_and_test"}, "order": "TO", "mode": "full",
                 "group_by": "user"},
      device="cpu", use_gpu=False, show_progress=False, seed=2024, reproducibility=False,
      log_wandb=False)
  config = Config(model="SASRec", dataset="beauty", config_dict=cfg)
  init_seed(config["seed"], config["reproducibility"])
  dataset = create_dataset(config)
  train_data, _, _ = data_preparation(config, dataset)
  model = SASRec(config, train_data._dataset).to("cpu")  # pylint: disable=protected-access
  opt = torch.optim.Adam(model.parameters(), lr=1e-3)
  n_params = sum(x.numel() for x in model.parameters())
  model.train()
  print(f"recbole SASRec built: {n_params:,} parameters, {len(train_data.dataset)} training rows")
  if a.steps <= 0:  # set-up check only
    return

  def batches():
    while True:
      for inter in train_data:
        yield inter

  it = batches()
  if a.model_only:
    first = next(it)
    it = iter(lambda: first, None)
  done, t0 = 0, None
  for k in range(a.warmup + a.steps):
    if k == a.warmup:
      t0 = time.perf_counter()
    inter = next(it).to("cpu")
    opt.zero_grad()
    loss = model.calculate_loss(inter)
    loss.backward()
    opt.step()
    if k >= a.warmup:
      done += len(inter)
  dt = time.perf_counter() - t0
  eps = done / dt
  print(f"recbole SASRec ({a.loss}{', model only' if a.model_only else ''}), torch {torch.__version__}, threads {torch.get_num_threads()}, "
        f"params {n_params:,}, {rows} interactions, {len(train_data.dataset)} training rows")
  print(f"{a.steps} steps of batch {a.batch_size}: {dt:.1f} s; one epoch = "
        f"{len(train_data.dataset) / eps:.1f} s")
  print(f"recbole_sasrec_train_targets_per_sec: {eps:.1f}")
  print(f"recbole_sasrec_train_examples_per_sec: {eps:.1f}")


if __name__ == "__main__":
  main()
