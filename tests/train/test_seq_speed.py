"""The sequential step's speed changes leave the maths unchanged (issue 17, item 4)."""
import subprocess
import sys
import textwrap

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from rankjax.models import sequential as S
from rankjax.train import learner as learner_lib
from rankjax.train import mesh as mesh_lib

from tests.models.test_sequential import bert_setup, run, sasrec_setup


def _learner(spec, *, dedupe_item: bool, data_devices: int = 1):
  # A dense table listed as sharded takes the old dedupe path (on a model axis of size 1 its
  # gather is the plain one), so the two learners differ only in the item lookup.
  mesh = mesh_lib.make_mesh(data_devices, 1, devices=jax.devices()[:data_devices])
  return learner_lib.Learner(
      spec=spec, model=S.SASRec(spec=spec, position="rote"), tasks=("next_item",),
      tx=optax.adam(1e-2), sparse_opt=None, sparse_tables=frozenset(), mesh=mesh,
      sharded_tables=frozenset({"item"}) if dedupe_item else frozenset(), full_tables=("item",),
      eval_kind="ranking")


def test_dense_item_table_without_dedupe_gives_the_same_step():
  spec, batch, _ = sasrec_setup(batch_size=4)
  batch = {**batch, "example_mask": jnp.asarray([1.0, 1.0, 1.0, 0.0])}
  old, new = _learner(spec, dedupe_item=True), _learner(spec, dedupe_item=False)
  state0 = old.init(jax.random.key(0), batch)
  s_old, m_old = jax.jit(old.train_step)(state0, batch)
  s_new, m_new = jax.jit(new.train_step)(state0, batch)
  np.testing.assert_allclose(m_new["loss"], m_old["loss"], rtol=1e-6)
  np.testing.assert_allclose(m_new["grad_norm/dense"], m_old["grad_norm/dense"], rtol=1e-5)
  item0 = np.asarray(state0.params["embeddings"]["item"])
  for s in (s_old, s_new):
    item = np.asarray(s.params["embeddings"]["item"])
    # Rows read by the batch moved; row 0 (padding) and unread rows did not.
    assert not np.allclose(item[batch["item_seq"][0, -1]], item0[batch["item_seq"][0, -1]])
    np.testing.assert_array_equal(item[0], item0[0])
  jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-7),
               s_new.params, s_old.params)


# Learned positions only change the input, so the cases cover the attention variants.
@pytest.mark.parametrize("kw", [{"position": "rote", "key_padding_mask": True, "norm_first": True},
                                {"cape": True, "cape_max_len": 6},
                                {"attention": "focused", "num_heads": 2}])
def test_sasrec_eval_of_the_last_slot_only_gives_the_same_scores(kw):
  spec, batch, tables = sasrec_setup()
  model = S.SASRec(spec=spec, **kw)
  out, variables = run(model, spec, batch, tables, train=False)
  full, _ = run(model.clone(eval_last_only=False), spec, batch, tables, train=False,
                variables=variables)
  assert out["scores"].shape == full["scores"].shape
  np.testing.assert_allclose(out["scores"], full["scores"], rtol=1e-5, atol=1e-6)


def test_bert4rec_eval_of_the_last_slot_only_gives_the_same_scores():
  spec, batch, tables = bert_setup()
  model = S.BERT4Rec(spec=spec)
  out, variables = run(model, spec, batch, tables, train=False)
  full, _ = run(model.clone(eval_last_only=False), spec, batch, tables, train=False,
                variables=variables)
  np.testing.assert_allclose(out["scores"], full["scores"], rtol=1e-5, atol=1e-6)


_THREEFRY = textwrap.dedent("""
    import jax, numpy as np
    f = lambda k: jax.random.bernoulli(k, 0.5, (4, 50, 64))
    key = jax.random.key(3)
    rolled = np.asarray(jax.jit(f)(key))
    from rankjax.train import cpu_speed
    assert cpu_speed.unroll_threefry()
    g = jax.jit(lambda k: f(k))
    unrolled = np.asarray(g(key))
    assert (rolled == unrolled).all(), "bits differ"
    assert "while" not in g.lower(key).compile().as_text(), "threefry is still a loop"
    print("ok")
""")


def test_unrolled_threefry_draws_the_same_bits_without_a_loop():
  out = subprocess.run([sys.executable, "-c", _THREEFRY], capture_output=True, text=True,
                       env={"JAX_PLATFORMS": "cpu", "PYTHONPATH": ":".join(sys.path)}, timeout=120)
  assert out.returncode == 0, out.stderr[-2000:]
  assert out.stdout.strip().endswith("ok")


def test_compiler_options_of_the_ynn_fusion_switch():
  from rankjax.train import cpu_speed  # pylint: disable=g-import-not-at-top
  assert cpu_speed.compiler_options({}) == {}
  assert cpu_speed.compiler_options({"ynn_fusion_type": ""}) == {}
  with pytest.raises(ValueError, match="ynn_fusion_type='matmul'"):
    cpu_speed.compiler_options({"ynn_fusion_type": "matmul"})
  opts = cpu_speed.compiler_options({"ynn_fusion_type": "dot"})
  if jax.default_backend() == "cpu":
    assert opts == {"xla_cpu_experimental_ynn_fusion_type": "LIBRARY_FUSION_TYPE_DOT"}
  else:
    assert opts == {}


def test_dot_only_ynn_fusions_give_the_same_step():
  """The switch moves element-wise work out of the YNNPACK fusions: same maths, rounding only."""
  from rankjax.train import cpu_speed  # pylint: disable=g-import-not-at-top
  spec, batch, _ = sasrec_setup(batch_size=4)
  batch = {**batch, "example_mask": jnp.ones((4,), jnp.float32)}
  learner = _learner(spec, dedupe_item=False)
  state0 = learner.init(jax.random.key(0), batch)
  results, programs = [], []
  for kind in ("", "dot"):
    opts = cpu_speed.compiler_options({"ynn_fusion_type": kind})
    train, _, _, _ = learner.jit_steps(state0, compiler_options=opts)
    programs.append(train.lower(state0, batch).compile().as_text())
    state = jax.tree.map(jnp.copy, state0)  # the step donates its state
    for _ in range(3):
      state, metrics = train(state, batch)
    results.append((state, metrics))
  if jax.default_backend() == "cpu":
    assert programs[0] != programs[1], "the option did not reach the compiler"
  (s_ref, m_ref), (s_dot, m_dot) = results
  np.testing.assert_allclose(m_dot["loss"], m_ref["loss"], rtol=1e-5)
  jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6),
               s_dot.params, s_ref.params)


def test_data_parallel_host_devices_give_the_same_steps():
  """cpu_speed.host_devices runs the batch over several CPU devices: the dropout bits are the
  same (partitionable Threefry) and the gradients are summed across devices, so three steps
  match the one-device steps up to summation order."""
  if len(jax.devices()) < 2:
    pytest.skip("needs 2 devices (the tests force 8 host devices)")
  assert jax.config.jax_threefry_partitionable, "sharded dropout would draw other bits"
  spec, batch, _ = sasrec_setup(batch_size=4)
  batch = {**batch, "example_mask": jnp.ones((4,), jnp.float32)}
  states = []
  for n in (1, 2):
    learner = _learner(spec, dedupe_item=False, data_devices=n)
    state = learner.init(jax.random.key(0), batch)
    train, _, _, _ = learner.jit_steps(state)
    sharded = jax.device_put(batch, mesh_lib.batch_sharding(learner.mesh))
    for _ in range(3):
      state, metrics = train(state, sharded)
    states.append((state, float(metrics["loss"])))
  (one, loss_one), (two, loss_two) = states
  assert loss_one == pytest.approx(loss_two, rel=1e-5)
  params0 = _learner(spec, dedupe_item=False).init(jax.random.key(0), batch).params
  moved = jax.tree.map(lambda a, b: float(np.abs(np.asarray(a) - np.asarray(b)).max()),
                       one.params, params0)
  assert max(jax.tree.leaves(moved)) > 1e-3, "the steps did not train"
  jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6),
               two.params, one.params)


_HOST_DEVICES = textwrap.dedent("""
    import sys
    from rankjax.train import cpu_speed
    case = sys.argv[1]
    if case == "explicit":
      print(cpu_speed.set_host_devices(3, 6))
    elif case == "auto":
      cpu_speed.usable_cores = lambda: 4
      print(cpu_speed.set_host_devices(-1, 6))  # 4 does not divide 6: 3
    elif case == "bad":
      try:
        cpu_speed.set_host_devices(-2, 6)
      except ValueError as e:
        print(e)
    import jax
    print(len(jax.devices("cpu")))
""")


@pytest.mark.parametrize("case,xla_flags,expected", [
    ("explicit", "", ["3", "3"]),
    ("auto", "", ["3", "3"]),
    # An explicit XLA flag (the tests' simulated mesh) wins over the config.
    ("explicit", "--xla_force_host_platform_device_count=5", ["5", "5"]),
    ("bad", "", ["cpu_speed.host_devices=-2: use 0 (JAX's default), -1 (one per core) or a "
                 "positive device count", "1"]),
])
def test_host_devices_are_set_before_the_backend_starts(case, xla_flags, expected):
  out = subprocess.run([sys.executable, "-c", _HOST_DEVICES, case], capture_output=True,
                       text=True, timeout=120,
                       env={"JAX_PLATFORMS": "cpu", "PYTHONPATH": ":".join(sys.path),
                            "XLA_FLAGS": xla_flags})
  assert out.returncode == 0, out.stderr[-2000:]
  assert out.stdout.split("\n")[:2] == expected
