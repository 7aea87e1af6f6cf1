"""experiments/seq_baselines: each model at its published settings (seq_baselines.md 2-5), the ID
models' runlocal trains end to end, and the semantic-ID models refuse Toys."""
import math

import pytest

from rankjax.data import registry
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


@pytest.mark.parametrize("dataset,source",
                         [("beauty_rq", "rqvae"), ("beauty_rqkmeans", "rqkmeans")])
def test_rq_variant_gives_tiger_its_own_sequences_and_four_code_ids(dataset, source):
  _need("amazon_beauty_semantic_ids_rq")
  config = EXP.get_config(f"plugin=tiger,dataset={dataset},max_users=50")
  assert (config.dataset.name, config.dataset.sid_source) == ("amazon_beauty_rq", source)
  assert tuple(config.model.kwargs.codebook_sizes) == (256, 256, 256, 256)
  assert tuple(config.eval.ranking_groups) == ()  # untimed: no same-day groups
  ds = registry.load(config.dataset)
  # The model's levels must be the data's, or TIGER refuses the code table.
  assert tuple(ds.info["codebook_sizes"]) == tuple(config.model.kwargs.codebook_sizes)
  assert "item_seq_ts" not in {f.name for f in ds.spec.features}
  assert ("beauty_rq", "tiger") in {(c["dataset"], c["plugin"]) for c in EXP.sweep()}
  # LETTER's Beauty keeps its five levels.
  assert EXP.get_config("plugin=tiger").model.kwargs.codebook_sizes[-1] == 3


def test_time_plugins_refuse_the_untimed_rq_variant():
  rote = _experiment("rote")
  with pytest.raises(ValueError, match="no timestamps"):
    rote.get_config("plugin=rote,dataset=beauty_rq")
  assert rote.get_config("plugin=baseline,dataset=beauty_rq").dataset.name == "amazon_beauty_rq"
