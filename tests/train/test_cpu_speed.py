"""``cpu_speed.jit``: steps jitted outside the trainer compile with the enclosing run's options."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from rankjax.train import cpu_speed


def _with_options(options: dict):
  """A ``process_options_from`` block whose options are ``options`` (bypasses the name table, so
  that an option XLA rejects proves the options reach the compiler)."""
  class Block:
    def __enter__(self):
      self.previous = cpu_speed._process["options"]  # pylint: disable=protected-access
      cpu_speed._process["options"] = options  # pylint: disable=protected-access

    def __exit__(self, *exc):
      cpu_speed._process["options"] = self.previous  # pylint: disable=protected-access
  return Block()


def test_options_are_read_at_call_time_not_at_decoration():
  @cpu_speed.jit
  def plus_one(x):
    return x + 1

  np.testing.assert_array_equal(plus_one(jnp.ones(2)), 2.0)   # XLA's defaults: compiles
  with _with_options({"xla_no_such_option_for_the_test": "1"}):
    with pytest.raises(Exception, match="xla_no_such_option_for_the_test"):
      plus_one(jnp.ones(2))
  np.testing.assert_array_equal(plus_one(jnp.ones(2)), 2.0)   # back to the defaults


def test_block_sets_and_restores_the_options_even_on_error():
  assert cpu_speed.process_options() == {}
  with cpu_speed.process_options_from({"ynn_fusion_type": "dot"}) as opts:
    assert cpu_speed.process_options() == opts
    if jax.default_backend() == "cpu":
      assert opts == {"xla_cpu_experimental_ynn_fusion_type": "LIBRARY_FUSION_TYPE_DOT"}
  assert cpu_speed.process_options() == {}
  with pytest.raises(ValueError, match="ynn_fusion_type='matmul'"):
    with cpu_speed.process_options_from({"ynn_fusion_type": "matmul"}):
      pass
  with pytest.raises(RuntimeError, match="inside"):
    with cpu_speed.process_options_from({"ynn_fusion_type": "dot"}):
      raise RuntimeError("inside")
  assert cpu_speed.process_options() == {}


def test_jit_keywords_pass_through():
  @cpu_speed.jit(static_argnames=("power",))
  def raise_to(x, power):
    return x * x if power == 2 else x   # a Python branch: fails unless power is static

  x = jnp.arange(4.0)
  np.testing.assert_allclose(raise_to(x, power=2), x ** 2)
  with cpu_speed.process_options_from({"ynn_fusion_type": "dot"}):
    np.testing.assert_allclose(raise_to(x, power=1), x)


def test_delayed_step_under_dot_fusions_matches_xla_defaults():
  """TESLA's FNC streaming step: the option changes rounding only. Compared on the losses of
  each step and the final predictions: Adam turns a rounding-level gradient near zero into a
  full lr-sized step, so single parameters may differ by about the lr."""
  from rankjax.delayed import models as M  # pylint: disable=g-import-not-at-top
  from rankjax.delayed import streams  # pylint: disable=g-import-not-at-top
  from rankjax.delayed import train as T  # pylint: disable=g-import-not-at-top
  buckets = (50,) * 22
  offs = jnp.asarray(M.offsets(buckets))
  rng = np.random.default_rng(0)
  # The nine clicks of tesla_netcvr.md 2.2, eight times over, with random features.
  pay = np.tile([600, 7200, -1, 600, 600, 7200, 7200, 4 * 86400, 600], 8)
  ref = np.tile([-1, -1, -1, 900, 36600, 7500, 43200, -1, 600 + 4 * 86400], 8)
  clicks = dict(click_ts=np.zeros(72, np.int64), pay_ts=pay, refund_ts=ref)
  x = rng.integers(0, 50, (72, 22)).astype(np.int32)
  per_click = {k: np.full(72, 0.3, np.float32) for k in
               ("p_pre_v", "p_pre_r", "p_inw_v", "p_tn_v", "p_inw_r", "p_tn_r")}
  cols = T.event_columns(streams.build("fnc", clicks, 864, 864), x, per_click)
  n = len(cols["y"]) // 32 * 32
  results = []
  for kind in ("", "dot"):
    with cpu_speed.process_options_from({"ynn_fusion_type": kind}):
      params, stats = M.init_dual(jax.random.PRNGKey(0), buckets, "separate")
      tx = T.adam(1e-2)
      opt = T.init_opt(tx, params)
      step = T.make_step("fnc", "separate", tx, offs, {})
      losses = []
      for a in range(0, n, 32):
        params, stats, opt, loss, _ = step(params, stats, opt, T.make_batch(cols, a, a + 32, 32),
                                           jax.random.PRNGKey(a))
        losses.append(float(loss))
      pred = T.predict_dual((params, stats, "separate"), x, offs)
      results.append((np.array(losses), pred))
  (l_ref, p_ref), (l_dot, p_dot) = results
  assert len(l_ref) >= 2
  np.testing.assert_allclose(l_dot, l_ref, rtol=1e-4)
  for a, b in zip(p_dot, p_ref):
    np.testing.assert_allclose(a, b, atol=1e-2)   # measured 1.4e-3
