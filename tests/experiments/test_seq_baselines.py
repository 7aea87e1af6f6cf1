"""experiments/seq_baselines: each model at its published settings (seq_baselines.md 2-5), the ID
models' runlocal trains end to end, and the semantic-ID models refuse Toys."""
import math

import pytest

from rankjax.train import trainer
from tests.experiments.test_seq_experiments import _experiment, _need

EXP = _experiment("seq_baselines")


def test_each_model_gets_its_published_settings():
  sasrec, ce, kang, bert = (EXP.get_config(f"plugin={p}")
                            for p in ("sasrec", "sasrec_ce", "kang205", "bert4rec"))
  assert (sasrec.dataset.dim, sasrec.train.batch_size, sasrec.train.num_epochs) == (64, 512, 1000)
  assert sasrec.model.kwargs.get("loss", "bce") == "bce" and "loss" not in sasrec.dataset
  assert ce.model.kwargs.loss == "ce" and ce.dataset.loss == "ce"     # no sampled negatives
  assert (kang.dataset.dim, kang.train.batch_size, kang.train.num_epochs) == (50, 128, 201)
  assert kang.optimizer.kwargs.to_dict() == dict(b1=0.9, b2=0.98)
  assert bert.model.name == "bert4rec" and bert.dataset.example == "bert4rec"
  assert bert.optimizer.name == "adamw" and bert.optimizer.lr == 1e-4
  assert bert.optimizer.kwargs.to_dict() == dict(weight_decay=0.01, b1=0.9, b2=0.999, eps=1e-6)
  assert (bert.optimizer.schedule, bert.optimizer.warmup_steps) == ("linear", 100)
  assert bert.optimizer.grad_clip_norm == 1.0
  assert (bert.embedding.init, bert.embedding.init_stddev) == ("normal", 0.02)
  assert (bert.model.kwargs.num_heads, bert.model.kwargs.ffn_dim) == (2, 256)
  assert (bert.model.kwargs.hidden_dropout, bert.model.kwargs.attn_dropout) == (0.5, 0.2)
  # A schedule option still overrides the backbone's.
  assert EXP.get_config("plugin=bert4rec,schedule=constant").optimizer.schedule == "constant"
  with pytest.raises(ValueError, match="Beauty only"):
    EXP.get_config("plugin=tiger,dataset=toys")
  with pytest.raises(ValueError, match="unknown plugin 'gru4rec'"):
    EXP.get_config("plugin=gru4rec")
  assert {(c["dataset"], c["plugin"]) for c in EXP.sweep()} >= {("beauty", "tiger"),
                                                                 ("toys", "bert4rec")}
  assert ("toys", "tiger") not in {(c["dataset"], c["plugin"]) for c in EXP.sweep()}


@pytest.mark.parametrize("plugin", ["bert4rec"])  # SASRec-CE: tests/models/test_sequential.py
def test_runlocal_trains_end_to_end(plugin, tmp_path):
  _need("amazon_beauty_5core_time")
  config = EXP.get_config(f"plugin={plugin},runlocal")
  with config.unlocked():
    config.eval.compat_users = 100
  results = trainer.train_offline(config, str(tmp_path / "run"))
  m = results["metrics"]
  for split in ("validation", "test"):
    assert 0.0 <= m[f"{split}/NDCG@10"] <= 1.0 and 0.0 <= m[f"{split}/Recall@10"] <= 1.0
  assert math.isfinite(results["metrics"]["test/NDCG@10"])
