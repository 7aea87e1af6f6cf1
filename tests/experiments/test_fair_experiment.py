"""FAIR-A experiment options (issue 18 item 4, seq_fair.md 5 and 7.8): the reference warm-up +
cosine lr schedule as an option (the default stays the constant lr of the stored runs), and the
focused-attention-only arm of the ablation, which must differ from RPG-lite in the attention only
and from full FAIR-A in the auxiliary objectives only."""
from pathlib import Path

import jax
import pytest

from rankjax.experiments_lib import sweep
from rankjax.train import build_learner
from tests.models import test_sequential as T

REPO = Path(__file__).resolve().parents[2]
FAIR = sweep.load_module(REPO / "experiments" / "fair" / "config.py")
LR = 3e-4            # the semantic-ID backbone's AdamW lr
TOTAL = 15_000       # 150 epochs of ~100 steps (seq_fair.md 5); the trainer passes the real count
ABSENT = object()


def _lr(config, step, total=TOTAL):
  return float(build_learner.learning_rate(config.optimizer, total)(step))


def test_default_keeps_the_constant_lr_of_the_stored_runs():
  c = FAIR.get_config("plugin=fair")
  assert "schedule" not in c.optimizer and "warmup_steps" not in c.optimizer
  assert build_learner.learning_rate(c.optimizer, TOTAL) == LR


def test_cosine_option_warms_up_over_the_reference_10k_steps_then_decays_to_zero():
  c = FAIR.get_config("plugin=fair,schedule=cosine")
  assert (c.optimizer.schedule, c.optimizer.warmup_steps, c.optimizer.lr) == ("cosine", 10_000, LR)
  assert _lr(c, 0) == 0.0
  assert _lr(c, 5_000) == pytest.approx(LR / 2)         # linear warm-up
  assert _lr(c, 10_000) == pytest.approx(LR)            # peak at the end of the warm-up
  assert _lr(c, 12_500) == pytest.approx(LR / 2)        # cosine half-way through the decay
  assert _lr(c, TOTAL) == pytest.approx(0.0, abs=1e-12)


def test_warmup_as_a_percentage_of_the_run_or_in_steps():
  c = FAIR.get_config("schedule=cosine,warmup=5pct,lr=0.001")
  assert c.optimizer.warmup_fraction == 0.05 and "warmup_steps" not in c.optimizer
  assert _lr(c, 0) == 0.0
  assert _lr(c, 375) == pytest.approx(5e-4)             # 5% of 15,000 = 750 warm-up steps
  assert _lr(c, 750) == pytest.approx(1e-3)
  assert _lr(c, TOTAL) == pytest.approx(0.0, abs=1e-12)
  assert _lr(c, 100, total=2_000) == pytest.approx(1e-3)  # the fraction follows the run's length
  assert FAIR.get_config("schedule=cosine,warmup=100").optimizer.warmup_steps == 100


@pytest.mark.parametrize("arg,match", [("schedule=step", "unknown schedule"),
                                       ("schedule=cosine,warmup=soon", "warmup="),
                                       ("schedule=cosine,warmup=150pct", "percentage")])
def test_bad_schedule_options(arg, match):
  with pytest.raises(ValueError, match=match):
    FAIR.get_config(arg)


def _changed(a, b) -> set:
  return {k for k in a.keys() | b.keys() if a.get(k, ABSENT) != b.get(k, ABSENT)}


def test_focused_arm_config_differs_in_exactly_the_intended_kwargs():
  kw = {p: FAIR.get_config(f"plugin={p}").model.kwargs.to_dict() for p in ("baseline", "focused", "fair")}
  assert _changed(kw["baseline"], kw["focused"]) == {"attention", "focused_heads", "lambda_schedule"}
  assert _changed(kw["focused"], kw["fair"]) == {"w_rob", "w_mi", "noise_type", "noise_rate",
                                                 "rob_distance", "mi_temperature", "mi_positions"}
  assert kw["focused"]["attention"] == "focused" and "focused" in FAIR.LABELS
  assert "focused" in {cell["plugin"] for cell in FAIR.sweep()}


def test_one_loss_arms_add_exactly_their_loss_to_focused_attention():
  """seq_fair.md 7.8: "+ L_rob" and "+ L_MI" each switch on one auxiliary loss with its settings;
  together they are FAIR-A."""
  kw = {p: FAIR.get_config(f"plugin={p}").model.kwargs.to_dict()
        for p in ("focused", "focused_rob", "focused_mi", "fair")}
  rob = {"w_rob", "noise_type", "noise_rate", "rob_distance"}
  mi = {"w_mi", "mi_temperature", "mi_positions"}
  assert _changed(kw["focused"], kw["focused_rob"]) == rob
  assert _changed(kw["focused"], kw["focused_mi"]) == mi
  assert _changed(kw["focused_rob"], kw["fair"]) == mi
  assert _changed(kw["focused_mi"], kw["fair"]) == rob
  assert {"focused_rob", "focused_mi"} <= {cell["plugin"] for cell in FAIR.sweep()}
  spec, batch, tables = T.sid_setup()
  for plugin, loss in (("focused_rob", "rob"), ("focused_mi", "mi")):
    out, _ = T.run(T._sid(spec, **FAIR.PLUGINS[plugin]), spec, batch, tables)
    assert set(out["aux_losses"]) == {loss} and float(out["aux_losses"][loss]) > 0


def _leaves(variables) -> dict:
  return {jax.tree_util.keystr(p): v.shape for p, v in jax.tree_util.tree_leaves_with_path(variables)}


def test_focused_arm_adds_focused_attention_parameters_and_no_auxiliary_loss():
  spec, batch, tables = T.sid_setup()
  outs, params = {}, {}
  for p in ("baseline", "focused", "fair"):
    outs[p], v = T.run(T._sid(spec, **FAIR.PLUGINS[p]), spec, batch, tables)
    params[p] = _leaves(v)
  assert "aux_losses" not in outs["baseline"] and "aux_losses" not in outs["focused"]
  assert set(outs["fair"]["aux_losses"]) == {"rob", "mi"}
  assert all(float(x) > 0 for x in outs["fair"]["aux_losses"].values())
  # RPG-lite -> focused: the same projections plus the per-layer lambda vectors and RMSNorm scale.
  added = set(params["focused"]) - set(params["baseline"])
  assert added and all(k.split("'")[-2] in ("lambda_q1", "lambda_k1", "lambda_q2", "lambda_k2",
                                             "subln_scale") for k in added)
  assert {k: params["focused"][k] for k in params["baseline"]} == params["baseline"]
  # focused -> FAIR-A: only the InfoNCE projection MLPs (unnamed Dense modules at the top level).
  assert params["focused"].items() <= params["fair"].items()
  extra = set(params["fair"]) - set(params["focused"])
  assert extra and all(k.startswith("['params']['Dense_") for k in extra)


def test_lr_is_selected_per_arm_on_validation_ndcg(tmp_path):
  """scripts/sweep_seq.py --lrs reuses the multi-task lr selection: each plug-in gets the lr of
  its best mean validation NDCG@10 (the early-stopping metric), whatever test says."""
  from rankjax.experiments_lib import lr_selection  # pylint: disable=g-import-not-at-top
  from tests.experiments.test_seq_experiments import _need  # pylint: disable=g-import-not-at-top
  _need("amazon_beauty_5core_time")
  _need("amazon_beauty_semantic_ids_letter")
  val = {"baseline": {3e-4: 0.02, 1e-3: 0.03}, "focused": {3e-4: 0.04, 1e-3: 0.01}}

  def train(config, workdir, dataset):
    del workdir, dataset
    v = val[_arm(config)][config.optimizer.lr]
    return {"metrics": {"validation/NDCG@10": v + 1e-4 * (config.seed - 2024),
                        "test/NDCG@10": 1.0 - v}, "steps": 1}

  runs = sweep.expand([dict(runlocal=True, plugin=p) for p in val],
                      sweep.Selection(seeds=(2024, 2025)))
  records = lr_selection.run(runs, (3e-4, 1e-3), paper="fair", get_config=FAIR.get_config,
                             results_dir=tmp_path / "res", workdir_root=tmp_path / "wd",
                             out_dir=tmp_path / "sel", train_fn=train, log=lambda m: None)
  assert {r["cell"]["plugin"]: r["selected_lr"] for r in records} == {"baseline": 1e-3,
                                                                      "focused": 3e-4}
  assert all(r["metric"] == "NDCG@10" for r in records)
  assert (tmp_path / "sel" / "lr_selection.md").exists()


def _arm(config) -> str:
  kw = config.model.kwargs
  return "baseline" if kw.attention == "standard" else "fair" if kw.get("w_rob") else "focused"
