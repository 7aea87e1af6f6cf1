"""Tests for the multi-task models and their blocks (mto_baselines.md 8.11, mto_drgrad.md 3,
ektm.md 8)."""
import flax
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from rankjax.data import features as F
from rankjax.layers import experts as X
from rankjax.models import ektm as EK
from rankjax.models import multitask as M
from rankjax.models import registry

jax.config.update("jax_disable_most_optimizations", True)

TASKS = ("click", "buy")
B = 6
SPEC = F.FeatureSpec(
    (F.Feature("user", F.SPARSE, vocab_size=7, dim=4),
     F.Feature("item", F.SPARSE, vocab_size=9, dim=4),
     F.Feature("d1", F.DENSE), F.Feature("d2", F.DENSE), F.Feature("d3", F.DENSE)),
    labels=TASKS)
TINY = {
    "single_task": dict(bottom_hidden=(8,)),
    "shared_bottom": dict(bottom_hidden=(8,)),
    "omoe": dict(num_experts=3, expert_hidden=(8,)),
    "mmoe": dict(num_experts=3, expert_hidden=(8,)),
    "ple": dict(expert_hidden=((8,), (6,)), num_shared_experts=2, num_task_experts=2),
    "esmm": dict(bottom_hidden=(8,)),
    "aitm": dict(bottom_hidden=(8,)),
    "split_mmoe": dict(bottom_hidden=(8,), num_experts=3, expert_hidden=(6,)),
    "ektm": dict(encoder_hidden=(8,)),
}


def _emb_and_batch(seed=0, batch_size=B):
  rng = np.random.default_rng(seed)
  emb = {f.name: jnp.asarray(rng.normal(size=(batch_size, f.dim)), jnp.float32)
         for f in SPEC.id_features}
  batch = {f.name: jnp.asarray(rng.normal(size=(batch_size,)), jnp.float32)
           for f in SPEC.dense_features}
  click = (np.arange(batch_size) % 2 == 0).astype(np.float32)
  batch["click"] = jnp.asarray(click)
  batch["buy"] = jnp.asarray(click * (np.arange(batch_size) % 4 == 0))
  batch[F.EXAMPLE_MASK] = jnp.ones((batch_size,), jnp.float32)
  return emb, batch


def _build(name, tasks=TASKS, **kw):
  args = dict(tower_hidden=(4,), **TINY[name])
  args.update(kw)
  return registry.get(name)(spec=SPEC, tasks=tasks, **args)


def _init(model, emb, batch, seed=0):
  return model.init({"params": jax.random.key(seed), "dropout": jax.random.key(seed + 1)},
                    emb, batch, train=False)


def _apply(model, variables, emb, batch, train=False, mutable=()):
  """Returns (outputs, updated collections); training mode updates batch statistics."""
  cols = list(mutable) + (["batch_stats"] if train else [])
  out = model.apply(variables, emb, batch, train=train, rngs={"dropout": jax.random.key(9)},
                    mutable=cols or False)
  return out if cols else (out, {})


@pytest.mark.parametrize("name", sorted(TINY))
@pytest.mark.parametrize("train", [False, True])
def test_model_contract_shapes(name, train):
  emb, batch = _emb_and_batch()
  model = _build(name, dense_projection=3)
  variables = _init(model, emb, batch)
  out, _ = _apply(model, variables, emb, batch, train=train)
  heads = out.get("logits", out.get("probs"))
  assert ("logits" in out) != ("probs" in out)
  assert set(heads) == set(TASKS)
  for v in heads.values():
    assert v.shape == (B,) and bool(jnp.all(jnp.isfinite(v)))
  if "probs" in out:
    assert all(bool(jnp.all((v >= 0) & (v <= 1))) for v in heads.values())
  for t, v in out.get("aux_losses", {}).items():
    assert t in TASKS and v.shape == () and bool(jnp.isfinite(v))
  for v in out.get("extra", {}).values():  # flat {name: [B]}, as the evaluator expects
    assert v.shape == (B,)
  assert "dense_proj" in variables["params"] or "dense_proj_click" in variables["params"]


def test_models_are_registered():
  assert set(TINY) <= set(registry.names())


@pytest.mark.parametrize("name,gates", [
    ("omoe", ["gate"]), ("mmoe", ["gate_click", "gate_buy"]),
    ("split_mmoe", ["gate_click", "shared_gate"])])
def test_moe_gates_are_softmax_normalised(name, gates):
  emb, batch = _emb_and_batch()
  model = _build(name)
  _, state = _apply(model, _init(model, emb, batch), emb, batch, mutable=["intermediates"])
  inter = state["intermediates"]
  assert sorted(k for k in inter if "gate" in k) == sorted(gates)
  for g in gates:
    (w,) = inter[g]["weights"]
    assert w.shape == (B, 3)
    np.testing.assert_allclose(w.sum(-1), 1.0, rtol=1e-6)
    assert bool(jnp.all(w > 0))


def test_ple_gate_sizes_and_no_shared_gate_on_last_layer():
  emb, batch = _emb_and_batch()
  model = _build("ple", tasks=("a", "b", "c"))
  variables = _init(model, emb, batch)
  _, state = _apply(model, variables, emb, batch, mutable=["intermediates"])
  params, inter = variables["params"], state["intermediates"]
  assert set(params["cgc_0"]) == {"shared_experts", "experts_a", "experts_b", "experts_c",
                                  "gate_a", "gate_b", "gate_c", "shared_gate"}
  assert "shared_gate" not in params["cgc_1"]
  assert params["cgc_0"]["gate_a"]["dense"]["kernel"].shape[-1] == 2 + 2  # own + shared
  assert params["cgc_0"]["shared_gate"]["dense"]["kernel"].shape[-1] == 2 + 2 * 3
  for layer in ("cgc_0", "cgc_1"):
    for gate, tree in inter[layer].items():
      np.testing.assert_allclose(tree["weights"][0].sum(-1), 1.0, rtol=1e-6, err_msg=gate)


def test_mmoe_with_one_expert_equals_shared_bottom():
  emb, batch = _emb_and_batch()
  kw = dict(norm="none", dropout=0.0)
  mmoe = _build("mmoe", num_experts=1, **kw)
  sb = _build("shared_bottom", **kw)
  p = _init(mmoe, emb, batch)["params"]
  sb_params = {"bottom": p["experts"]["expert_0"],
               **{f"tower_{t}": p[f"tower_{t}"] for t in TASKS}}
  jax.tree.map(lambda a, b: None, sb_params, _init(sb, emb, batch)["params"])  # same structure
  out_m, _ = _apply(mmoe, {"params": p}, emb, batch)
  out_s, _ = _apply(sb, {"params": sb_params}, emb, batch)
  for t in TASKS:
    np.testing.assert_allclose(out_m["logits"][t], out_s["logits"][t], rtol=1e-6, atol=1e-6)


def test_esmm_ctcvr_is_ctr_times_cvr():
  emb, batch = _emb_and_batch()
  model = _build("esmm")
  out, _ = _apply(model, _init(model, emb, batch), emb, batch)
  np.testing.assert_array_equal(out["probs"]["buy"],
                                out["probs"]["click"] * out["extra"]["cvr_buy"])
  assert bool(jnp.all(out["probs"]["buy"] <= out["probs"]["click"]))


def test_aitm_calibrator_is_zero_iff_constraint_holds():
  mask = jnp.ones((4,))
  p1 = jnp.array([0.9, 0.5, 0.3, 0.2])
  assert float(M.calibrator_loss(p1, p1 * 0.5, mask)) == 0.0
  assert float(M.calibrator_loss(p1, p1, mask)) == 0.0
  p2 = jnp.array([0.1, 0.7, 0.3, 0.2])  # row 1 violates by 0.2
  np.testing.assert_allclose(M.calibrator_loss(p1, p2, mask), 0.2 / 4, rtol=1e-6)
  # Padded rows (example_mask 0) do not count.
  np.testing.assert_allclose(M.calibrator_loss(p1, p2, jnp.array([1.0, 0.0, 1.0, 1.0])), 0.0)


def test_aitm_model_aux_loss_and_attention():
  emb, batch = _emb_and_batch()
  model = _build("aitm", calibrator_weight=0.6)
  variables = _init(model, emb, batch)
  out, state = _apply(model, variables, emb, batch, mutable=["intermediates"])
  p = {t: jax.nn.sigmoid(out["logits"][t]) for t in TASKS}
  expected = 0.6 * jnp.mean(jax.nn.relu(p["buy"] - p["click"]))
  np.testing.assert_allclose(out["aux_losses"]["buy"], expected, rtol=1e-6)
  assert set(out["aux_losses"]) == {"buy"}
  (w,) = state["intermediates"]["attention"]["weights"]
  assert w.shape == (B, 2)
  np.testing.assert_allclose(w.sum(-1), 1.0, rtol=1e-6)
  off = _build("aitm", calibrator_weight=0.0)
  out0, _ = _apply(off, variables, emb, batch)
  assert "aux_losses" not in out0
  np.testing.assert_allclose(out0["logits"]["buy"], out["logits"]["buy"])


def test_param_ownership_convention():
  emb, batch = _emb_and_batch()
  cases = {
      "mmoe": ({"tower_click": 0, "gate_click": 0, "tower_buy": 1, "gate_buy": 1, "experts": -1}),
      "omoe": ({"gate": -1, "experts": -1, "tower_buy": 1}),
      "ple": ({"cgc_0/gate_buy": 1, "cgc_0/experts_buy": -1, "cgc_0/shared_gate": -1,
               "cgc_1/gate_click": 0, "tower_click": 0}),
      "split_mmoe": ({"tower_click/dedicated": 0, "tower_click/on_shared": 0, "tower_buy": 1,
                      "gate_click": 0, "shared_gate": -1, "bottom": -1, "experts": -1}),
      "aitm": ({"bottom_click": 0, "bottom_buy": 1, "attention": -1, "transfer_buy": -1}),
      "ektm": ({"bottom_click": 0, "bottom_buy": 1, "transmitter_buy": -1, "tower_buy": 1}),
  }
  for name, want in cases.items():
    params = _init(_build(name), emb, batch)["params"]
    owners = flax.traverse_util.flatten_dict(M.owner_tree(params, TASKS), sep="/")
    for prefix, owner in want.items():
      got = {v for k, v in owners.items() if k.startswith(prefix + "/")}
      assert got == {owner}, (name, prefix, got)
  assert M.param_owner(("params", "tower_click", "head", "kernel"), TASKS) == 0
  assert M.param_owner(("params", "experts_click", "x"), TASKS) == -1


def test_split_mmoe_mu_route_and_prob_mix():
  emb, batch = _emb_and_batch()
  model = _build("split_mmoe")
  variables = _init(model, emb, batch)
  np.testing.assert_array_equal(variables["drgrad"]["mu"], [0.5, 0.5])
  out, _ = _apply(model, variables, emb, batch)
  za, zb = out["extra"]["split_dedicated"], out["extra"]["split_on_shared"]
  np.testing.assert_allclose(out["logits"]["click"], 0.5 * za + 0.5 * zb, rtol=1e-6)
  # Without the drgrad collection the model is plain Split-MMoE with mu_init.
  plain, _ = _apply(model, {"params": variables["params"]}, emb, batch)
  np.testing.assert_array_equal(plain["logits"]["click"], out["logits"]["click"])
  moved = {"params": variables["params"], "drgrad": {"mu": jnp.array([0.8, 0.2])}}
  out2, _ = _apply(model, moved, emb, batch)
  np.testing.assert_allclose(out2["logits"]["click"], 0.8 * za + 0.2 * zb, rtol=1e-6)
  prob = _build("split_mmoe", mix="prob")
  outp, _ = _apply(prob, variables, emb, batch)
  np.testing.assert_allclose(outp["probs"]["click"],
                             0.5 * jax.nn.sigmoid(za) + 0.5 * jax.nn.sigmoid(zb), rtol=1e-6)
  # The route hook sees (v1, v_s, v_s) and feeds T1', T1'', T2.
  zeroed = _build("split_mmoe", route=lambda v1, a, b: (v1, a, jnp.zeros_like(b)))
  outz, _ = _apply(zeroed, variables, emb, batch)
  np.testing.assert_allclose(outz["extra"]["split_on_shared"], zb, rtol=1e-6)
  tb = variables["params"]["tower_buy"]
  np.testing.assert_allclose(outz["logits"]["buy"],
                             X.Tower((4,)).apply({"params": tb}, jnp.zeros((B, 6))), rtol=1e-6)
  with pytest.raises(ValueError, match="exactly 2 tasks"):
    _init(_build("split_mmoe", tasks=("a", "b", "c")), emb, batch)


def _towers_called(model, emb, batch):
  """{module path: X.Tower instance} of every tower the model calls while initialising."""
  towers = {}

  def record(next_fun, args, kwargs, context):
    if isinstance(context.module, X.Tower) and context.method_name == "__call__":
      towers["/".join(context.module.path)] = context.module
    return next_fun(*args, **kwargs)

  with flax.linen.intercept_methods(record):
    variables = _init(model, emb, batch)
  return towers, variables


def test_split_mmoe_towers_are_built_like_t2():
  # mto_drgrad.md 2: T1', T1'' and T2 have identical architectures, init and norm included.
  emb, batch = _emb_and_batch(batch_size=64)
  model = _build("split_mmoe", tower_hidden=(256,), kernel_init="he_normal", norm="batch",
                 bn_momentum=0.9, dropout=0.1)
  towers, variables = _towers_called(model, emb, batch)
  assert sorted(towers) == ["tower_buy", "tower_click/dedicated", "tower_click/on_shared"]
  fields = ("features", "activation", "norm", "dropout", "kernel_init", "bn_momentum")
  t2 = {f: getattr(towers["tower_buy"], f) for f in fields}
  assert t2["kernel_init"] == "he_normal" and t2["bn_momentum"] == 0.9
  for path in ("tower_click/dedicated", "tower_click/on_shared"):
    assert {f: getattr(towers[path], f) for f in fields} == t2, path
  # The init law itself: he_normal's std is sqrt(2 / fan_in) (lecun_normal's would be 0.71x).
  params = variables["params"]
  for tower in (params["tower_buy"], params["tower_click"]["dedicated"],
                params["tower_click"]["on_shared"]):
    kernel = np.asarray(tower["mlp"]["dense_0"]["kernel"])
    np.testing.assert_allclose(kernel.std(), np.sqrt(2.0 / kernel.shape[0]), rtol=0.1)


def test_split_mmoe_ppnet_gate_starts_at_identity():
  emb, batch = _emb_and_batch()
  with_ppnet = _build("split_mmoe", ppnet_features=("user", "item"))
  variables = _init(with_ppnet, emb, batch)
  assert variables["params"]["ppnet"]["dense"]["kernel"].shape == (8, 6)
  plain = _build("split_mmoe")
  params = {k: v for k, v in variables["params"].items() if k != "ppnet"}
  a, _ = _apply(with_ppnet, variables, emb, batch)
  b, _ = _apply(plain, {"params": params}, emb, batch)
  for t in TASKS:
    np.testing.assert_allclose(a["logits"][t], b["logits"][t], rtol=1e-6)


def test_ektm_router_matches_the_spec_example():
  f0 = jnp.array([[1.0, 0.0]])
  f = jnp.array([[[1.0, 1.0], [0.0, 1.0]]])
  sim = EK.cosine_similarity(f)
  np.testing.assert_allclose(sim[0, 0], [1.0, 0.707107], rtol=1e-5)
  routed = EK.ektm_router(f0, f, sim, include_self=True)
  # ektm.md 8.1 prints s^ = (0.572749, 0.427251) and F_1 = (0.524250, 0.333333); the exact
  # softmax of (1, 1/sqrt(2)) is (0.572704, 0.427296), so F_1 = (0.524235, 0.333333).
  s_hat = 1.0 / (1.0 + np.exp(np.sqrt(0.5) - 1.0))
  np.testing.assert_allclose(s_hat, 0.572704, rtol=1e-6)
  np.testing.assert_allclose(routed[0, 0], [(1.0 + s_hat) / 3.0, 1.0 / 3.0], rtol=1e-5)
  np.testing.assert_allclose(routed[0, 0], [0.524250, 0.333333], rtol=1e-4)
  excl = EK.ektm_router(f0, f, sim, include_self=False)
  np.testing.assert_allclose(excl[0, 0], [0.5, 0.5], rtol=1e-6)
  single = EK.ektm_router(f0, f[:, :1], sim[:, :1, :1], include_self=False)
  np.testing.assert_allclose(single[0, 0], [1.0, 0.0])


def test_ektm_with_all_switches_off_equals_esmm():
  emb, batch = _emb_and_batch()
  esmm = _build("esmm")
  ektm = _build("ektm", router=False, transmitter=False, enhance_loss_weight=0.0,
                encoder_hidden=TINY["esmm"]["bottom_hidden"])
  v_esmm, v_ektm = _init(esmm, emb, batch), _init(ektm, emb, batch)
  jax.tree.map(np.testing.assert_array_equal, v_esmm, v_ektm)
  for train in (False, True):
    a, _ = _apply(esmm, v_esmm, emb, batch, train=train)
    b, _ = _apply(ektm, v_ektm, emb, batch, train=train)
    jax.tree.map(np.testing.assert_array_equal, a, b)


@pytest.mark.parametrize("parents,similarity", [((0, 1), "cosine"), ((0, 0), "learned")])
def test_ektm_entire_space_follows_parents(parents, similarity):
  emb, batch = _emb_and_batch()
  batch["fav"] = batch["buy"]
  tasks = ("click", "buy", "fav")
  model = _build("ektm", tasks=tasks, parents=parents, similarity=similarity)
  out, _ = _apply(model, _init(model, emb, batch), emb, batch)
  probs, cvr = out["probs"], {t: out["extra"][f"cvr_{t}"] for t in tasks[1:]}
  np.testing.assert_allclose(probs["buy"], probs["click"] * cvr["buy"], rtol=1e-6)
  parent = tasks[parents[1]]
  np.testing.assert_allclose(probs["fav"], probs[parent] * cvr["fav"], rtol=1e-6)
  assert bool(jnp.all(probs["fav"] <= probs[parent]))
  assert set(out["aux_losses"]) == {"buy", "fav"}
  with pytest.raises(ValueError, match="parents"):
    _init(_build("ektm", tasks=tasks, parents=(0, 2)), emb, batch)


def test_esmm_parents_give_parallel_cvr_tasks_and_match_ektm_all_off():
  # The ESMM baseline of the parallel pattern (ektm.md 2, 6.3) is EKTM-A with every switch off.
  emb, batch = _emb_and_batch()
  batch["fav"] = batch["buy"]
  tasks = ("click", "buy", "fav")
  esmm = _build("esmm", tasks=tasks, parents=(0, 0))
  ektm = _build("ektm", tasks=tasks, parents=(0, 0), router=False, transmitter=False,
                enhance_loss_weight=0.0, encoder_hidden=TINY["esmm"]["bottom_hidden"])
  v = _init(esmm, emb, batch)
  a, _ = _apply(esmm, v, emb, batch)
  b, _ = _apply(ektm, _init(ektm, emb, batch), emb, batch)
  jax.tree.map(np.testing.assert_array_equal, a, b)
  np.testing.assert_allclose(a["probs"]["fav"], a["probs"]["click"] * a["extra"]["cvr_fav"],
                             rtol=1e-6)
  chain, _ = _apply(_build("esmm", tasks=tasks), v, emb, batch)  # default: the chain
  np.testing.assert_allclose(chain["probs"]["fav"], chain["probs"]["buy"] * a["extra"]["cvr_fav"],
                             rtol=1e-6)
  with pytest.raises(ValueError, match=r"esmm: parents \(1, 0\)"):
    _init(_build("esmm", tasks=tasks, parents=(1, 0)), emb, batch)


def test_ektm_enhancement_hinge_and_its_gradient():
  emb, batch = _emb_and_batch()
  model = _build("ektm", norm="none", dropout=0.0, enhance_loss_weight=0.5, cvr_loss_weight=0.2)
  out, _ = _apply(model, _init(model, emb, batch), emb, batch)
  p, p_self = out["extra"]["cvr_buy"], out["extra"]["cvr_self_buy"]
  y, parent = batch["buy"], batch["click"]  # the CVR label counts only where click = 1
  hinge = M.masked_mean(jax.nn.relu(EK.focal_bce(p, y) - EK.focal_bce(p_self, y)), parent)
  cvr = M.masked_mean(EK.focal_bce(p, y), parent)
  np.testing.assert_allclose(out["aux_losses"]["buy"], 0.5 * hinge + 0.2 * cvr, rtol=1e-5)

  # Zero when the transfer never hurts; no gradient into the no-transfer probability.
  y2 = jnp.array([1.0, 0.0, 1.0])
  mask = jnp.ones((3,))
  p_better, p_own = jnp.array([0.9, 0.1, 0.8]), jnp.array([0.6, 0.3, 0.7])
  assert float(EK.enhancement_hinge(p_better, p_own, y2, mask)) == 0.0
  g_own = jax.grad(lambda q: EK.enhancement_hinge(p_own, q, y2, mask))(p_better)
  np.testing.assert_array_equal(g_own, 0.0)
  g_p = jax.grad(lambda q: EK.enhancement_hinge(q, p_better, y2, mask))(p_own)
  assert bool(jnp.all(g_p != 0))
  # Identical representations (router and transmitter off) give a zero hinge.
  same = _build("ektm", norm="none", dropout=0.0, enhance_loss_weight=1.0, router=False,
                transmitter=False)
  out_same, _ = _apply(same, _init(same, emb, batch), emb, batch)
  assert float(out_same["aux_losses"]["buy"]) == 0.0


def test_focal_bce_and_masked_mean():
  p = jnp.array([0.9, 0.2, 0.6])
  y = jnp.array([1.0, 0.0, 0.0])
  np.testing.assert_allclose(EK.focal_bce(p, y), -jnp.log(jnp.array([0.9, 0.8, 0.4])), rtol=1e-6)
  np.testing.assert_allclose(EK.focal_bce(p, y, 2.0),
                             jnp.array([0.01, 0.04, 0.36]) * -jnp.log(jnp.array([0.9, 0.8, 0.4])),
                             rtol=1e-5)
  assert float(M.masked_mean(jnp.array([1.0, 2.0]), jnp.zeros((2,)))) == 0.0


def test_blocks_mix_and_tower_shapes():
  w = jnp.array([[0.25, 0.75]])
  e = jnp.array([[[1.0, 2.0], [3.0, 4.0]]])
  np.testing.assert_allclose(X.mix(w, e), [[2.5, 3.5]])
  stack = X.ExpertStack(3, (5, 4))
  v = stack.init(jax.random.key(0), jnp.ones((2, 7)))
  assert stack.apply(v, jnp.ones((2, 7))).shape == (2, 3, 4)
  tower = X.Tower(())
  x = jnp.ones((2, 7))
  assert tower.apply(tower.init(jax.random.key(0), x), x).shape == (2,)
