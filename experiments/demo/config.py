r"""Demo: MMoE on the MMoE synthetic generator, two binary tasks, embedding + dense features.

  python -m rankjax.main --config=experiments/demo/config.py --workdir=/tmp/rankjax_demo
  python -m rankjax.main --config=experiments/demo/config.py:runlocal --workdir=/tmp/smoke

No download: the data is generated in memory (rankjax/data/synthetic.py).
"""
from rankjax import configs


def get_config(arg: str = ""):
  runlocal = arg == "runlocal"
  c = configs.base_config()
  c.experiment = "demo"
  c.tasks = ("task1", "task2")
  c.dataset = dict(name="synthetic_mmoe", correlation=0.5, label_type="binary",
                   num_examples=6000 if runlocal else 60000, num_features=32, num_sparse=8,
                   sparse_vocab_size=50, sparse_embed_dim=8, noise_std=3.0, seed=0)
  c.model.name = "mmoe"
  c.model.kwargs = dict(num_experts=4, expert_hidden=(32,), tower_hidden=(16,))
  c.optimizer.lr = 3e-3
  c.embedding.optimizer = "adagrad"
  c.embedding.lr = 0.05
  c.train.batch_size = 256
  c.train.num_epochs = 2 if runlocal else 8
  c.train.log_every = 20 if runlocal else 50
  c.train.eval_every = 40 if runlocal else 200
  c.train.checkpoint_every = 100 if runlocal else 500
  c.train.early_stopping.metric = "auc/mean"
  c.train.early_stopping.patience = 3
  c.eval.metrics = ("auc", "logloss", "pcoc")
  return c
