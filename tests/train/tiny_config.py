"""A seconds-long config for trainer tests: DNN on a small MMoE synthetic dataset."""
from rankjax import configs


def get_config(arg: str = ""):
  c = configs.base_config()
  c.experiment = "tiny"
  c.tasks = ("task1", "task2")
  c.dataset = dict(name="synthetic_mmoe", correlation=0.5, label_type="binary", num_examples=1200,
                   num_features=8, num_sparse=3, sparse_vocab_size=64, sparse_embed_dim=4, seed=0)
  c.model.name = "dnn"
  c.model.kwargs = dict(hidden=(16,))
  c.optimizer.lr = 1e-2
  c.train.batch_size = 64
  c.train.num_steps = 30
  c.train.log_every = 5
  c.train.eval_every = 10
  c.train.checkpoint_every = 7
  c.eval.batch_size = 256
  if arg == "sharded":
    c.mesh.model = 4
    c.embedding.shard_min_rows = 1
  return c
