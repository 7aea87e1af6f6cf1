"""Multi-task ranking models: the architectures of mto_baselines.md section 2 and DRGrad's
Split-MMoE (mto_drgrad.md 3); the EKTM approximation EKTM-A (ektm.md 3-4) builds on the same base
in rankjax/models/ektm.py.

Registered names: ``single_task``, ``shared_bottom``, ``omoe``, ``mmoe``, ``ple``, ``esmm``,
``aitm``, ``split_mmoe`` (and ``ektm`` from ektm.py). Each is built as ``cls(spec=..., tasks=(...), **kwargs)`` and
called as ``model(emb, batch, train=...)`` (rankjax/models/inputs.py). The defaults follow the
AliExpress setup of mto_baselines.md (MLP blocks Linear -> BatchNorm -> ReLU -> Dropout(0.2),
towers MLP(128, 64) -> Linear(1)); ``split_mmoe`` follows mto_drgrad.md (no norm, no dropout).

Parameter naming (multi-task optimisers rely on it; ``param_owner`` implements it):

* A path component ``<kind>_<task>`` with kind in ``OWNED_KINDS`` = (tower, gate, bottom,
  dense_proj) makes every leaf below it **owned** by that task: ``tower_<t>`` (towers; for
  split_mmoe ``tower_<t1>/dedicated`` and ``tower_<t1>/on_shared``), ``gate_<t>`` (MMoE gates,
  PLE task gates ``cgc_<l>/gate_<t>``, split_mmoe's gate 1), ``bottom_<t>`` (per-task bottoms of
  single_task, ESMM and AITM, EKTM-A's encoders) and ``dense_proj_<t>`` (single_task's own
  numerical projection).
* Everything else is **shared**: ``bottom``, ``experts``, ``gate`` (OMoE's single gate),
  ``shared_gate``, ``cgc_<l>/shared_experts``, ``cgc_<l>/shared_gate``, PLE's task experts
  ``cgc_<l>/experts_<t>`` (shared, as MTOReclib partitions PLE), ``dense_proj``, ``attention`` and
  ``transfer_<t>`` (AITM), ``ppnet`` (split_mmoe), ``router`` and ``transmitter_<t>`` (EKTM-A).
  This is mto_baselines.md 2.3's rule: what is not a task's tower, gate or bottom is shared.

Outputs: ``logits`` for every model except ``esmm`` and ``ektm`` (entire-space probabilities
under ``probs``) and ``split_mmoe`` with ``mix="prob"``. ``extra`` is flat, ``{name: [B]}`` (the
evaluator reports each as ``pred/<name>``): ``cvr_<task>`` (ESMM, EKTM-A: the conditional CVR),
``cvr_self_<task>`` (EKTM-A, when its hinge is computed), ``split_dedicated`` and
``split_on_shared`` (split_mmoe's z1', z1''). ``aux_losses[task]`` carries AITM's calibrator and
EKTM-A's extra terms.
"""
from __future__ import annotations

from typing import Any, Callable, Mapping, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from rankjax.data import features as F
from rankjax.layers import experts as X
from rankjax.layers.mlp import MLP
from rankjax.losses.objectives import masked_mean
from rankjax.models import inputs
from rankjax.models.registry import register

OWNED_KINDS = ("tower", "gate", "bottom", "dense_proj")
_PROB_EPS = 1e-7


# ------------------------------------------------------------------------------------------------
# Ownership of parameters.


def _key_name(k) -> str:
  for attr in ("key", "name", "idx"):
    if hasattr(k, attr):
      return str(getattr(k, attr))
  return str(k)


def param_owner(path: Sequence[Any], tasks: Sequence[str]) -> int:
  """Index in ``tasks`` of the task owning the leaf at ``path``, or -1 for a shared leaf.

  ``path`` is a sequence of names or of jax tree path keys (``DictKey`` etc.).
  """
  owned = {f"{kind}_{t}": i for i, t in enumerate(tasks) for kind in OWNED_KINDS}
  for k in path:
    i = owned.get(_key_name(k))
    if i is not None:
      return i
  return -1


def owner_tree(params, tasks: Sequence[str]):
  """A tree shaped like ``params`` holding each leaf's owner index (-1 = shared)."""
  return jax.tree_util.tree_map_with_path(lambda p, _: param_owner(p, tasks), params)


# ------------------------------------------------------------------------------------------------
# Pure pieces (unit-tested on their own).


def _per_task(prefix: str, tasks: Sequence[str], values: Sequence[jnp.ndarray]) -> dict:
  # ``extra`` is flat ({name: [B]}), so per-task extras carry the task in their name.
  return {f"{prefix}_{t}": v for t, v in zip(tasks, values)}


def _example_mask(batch: Mapping[str, jnp.ndarray], like: jnp.ndarray) -> jnp.ndarray:
  # Padded rows of the last batch must not count in model-side losses either.
  m = batch.get(F.EXAMPLE_MASK)
  return jnp.ones(like.shape[:1], like.dtype) if m is None else m.astype(like.dtype)


def calibrator_loss(p_prev: jnp.ndarray, p_next: jnp.ndarray, mask: jnp.ndarray) -> jnp.ndarray:
  """AITM's behavioural-expectation calibrator: mean_n max(p_next - p_prev, 0) (unweighted)."""
  return masked_mean(jax.nn.relu(p_next - p_prev), mask)


def entire_space(cond_probs: Sequence[jnp.ndarray], parents: Sequence[int]) -> list[jnp.ndarray]:
  """ESMM generalised: p_0^ES = p_0, p_k^ES = p_k * p_{parent(k)}^ES (parents[k - 1] < k)."""
  out = [cond_probs[0]]
  for k in range(1, len(cond_probs)):
    out.append(cond_probs[k] * out[parents[k - 1]])
  return out


def resolve_parents(model: str, tasks: Sequence[str], parents: Sequence[int] | None
                    ) -> tuple[int, ...]:
  """CVR task k's parent index for k = 1..K (default the chain 0, 1, ..., K-1), checked to lie in
  [0, k - 1] so that `entire_space` only multiplies by probabilities already computed."""
  k = len(tasks) - 1
  out = tuple(range(k)) if parents is None else tuple(parents)
  if len(out) != k or any(not 0 <= p < i + 1 for i, p in enumerate(out)):
    raise ValueError(f"{model}: parents {out} must give each CVR task k = 1..{k} a parent in "
                     f"[0, k - 1]")
  return out


# ------------------------------------------------------------------------------------------------
# Common base.


class _MultiTask(nn.Module):
  """Fields and helpers every multi-task model shares (inputs, blocks, towers)."""
  spec: F.FeatureSpec
  tasks: Sequence[str]
  tower_hidden: Sequence[int] = (128, 64)
  activation: str = "relu"
  norm: str = "batch"
  dropout: float = 0.2
  kernel_init: str = "lecun_normal"   # "he_normal" for the mtl_data.md 3.3 reference
  bn_momentum: float = 0.99           # MTReclib uses 0.9
  # > 0: the dense features go through one Linear(dense_width -> dense_projection) (AliExpress's
  # 17th "field"); 0 feeds them raw.
  dense_projection: int = 0

  def _check_tasks(self, min_tasks: int = 1, max_tasks: int | None = None) -> None:
    n = len(self.tasks)
    if n < min_tasks or (max_tasks is not None and n > max_tasks):
      want = f"exactly {min_tasks}" if max_tasks == min_tasks else f"at least {min_tasks}"
      raise ValueError(f"{type(self).__name__} needs {want} tasks, got {tuple(self.tasks)}")

  def _inputs(self, emb, batch, proj_name: str = "dense_proj") -> jnp.ndarray:
    if not self.dense_projection or not self.spec.dense_features:
      return inputs.flat_inputs(self.spec, emb, batch)
    id_names = {f.name for f in self.spec.id_features}
    dense_names = {f.name for f in self.spec.dense_features}
    dense = inputs.flat_inputs(self.spec, emb, batch, names=dense_names)
    parts = [inputs.flat_inputs(self.spec, emb, batch, names=id_names)] if id_names else []
    parts.append(nn.Dense(self.dense_projection, name=proj_name)(dense))
    return jnp.concatenate(parts, axis=-1)

  def _mlp(self, features: Sequence[int], name: str) -> MLP:
    return MLP(tuple(features), activation=self.activation, norm=self.norm, dropout=self.dropout,
               kernel_init=self.kernel_init, bn_momentum=self.bn_momentum,
               name=name)

  def _tower_kwargs(self) -> dict:
    """Every field of a task tower; Split-MMoE's T1', T1'' are built from the same dict as T2."""
    return dict(features=tuple(self.tower_hidden), activation=self.activation, norm=self.norm,
                kernel_init=self.kernel_init, bn_momentum=self.bn_momentum, dropout=self.dropout)

  def _tower(self, name: str) -> X.Tower:
    return X.Tower(**self._tower_kwargs(), name=name)

  def _tower_logits(self, feats: Sequence[jnp.ndarray], train: bool) -> dict[str, jnp.ndarray]:
    return {t: self._tower(f"tower_{t}")(h, train=train) for t, h in zip(self.tasks, feats)}


# ------------------------------------------------------------------------------------------------
# Architectures of mto_baselines.md 2.3.


@register("single_task")
class SingleTask(_MultiTask):
  """One independent bottom MLP(512, 256) and tower per task; nothing shared inside the model.

  The embedding tables belong to the trainer, so they are shared unless the trainer gives each
  task its own (MTReclib's Single-Task does), or one model is trained per task.
  """
  bottom_hidden: Sequence[int] = (512, 256)

  @nn.compact
  def __call__(self, emb, batch, *, train: bool = False):
    self._check_tasks()
    feats = [self._mlp(self.bottom_hidden, f"bottom_{t}")(
        self._inputs(emb, batch, proj_name=f"dense_proj_{t}"), train=train) for t in self.tasks]
    return {"logits": self._tower_logits(feats, train)}


@register("shared_bottom")
class SharedBottom(_MultiTask):
  """emb -> shared MLP(512, 256) ``bottom`` -> one tower per task."""
  bottom_hidden: Sequence[int] = (512, 256)

  @nn.compact
  def __call__(self, emb, batch, *, train: bool = False):
    self._check_tasks()
    h = self._mlp(self.bottom_hidden, "bottom")(self._inputs(emb, batch), train=train)
    return {"logits": self._tower_logits([h] * len(self.tasks), train)}


class _MixtureOfExperts(_MultiTask):
  """Shared experts on emb (or on an optional shared ``bottom``), mixed by softmax gates."""
  num_experts: int = 8
  expert_hidden: Sequence[int] = (512, 256)
  bottom_hidden: Sequence[int] = ()
  gate_init_std: float | None = None

  def _mixtures(self, emb, batch, gate_names: Sequence[str], train: bool) -> list[jnp.ndarray]:
    h = self._inputs(emb, batch)
    if self.bottom_hidden:
      h = self._mlp(self.bottom_hidden, "bottom")(h, train=train)
    e = X.ExpertStack(self.num_experts, tuple(self.expert_hidden), activation=self.activation,
                      norm=self.norm, dropout=self.dropout, kernel_init=self.kernel_init,
                      bn_momentum=self.bn_momentum, name="experts")(h, train=train)
    return [X.mix(X.Gate(self.num_experts, self.gate_init_std, name=n)(h), e) for n in gate_names]


@register("omoe")
class OMoE(_MixtureOfExperts):
  """One-gate MoE: a single ``gate`` shared by all tasks mixes 8 experts MLP(512, 256)."""

  @nn.compact
  def __call__(self, emb, batch, *, train: bool = False):
    self._check_tasks()
    (fea,) = self._mixtures(emb, batch, ["gate"], train)
    return {"logits": self._tower_logits([fea] * len(self.tasks), train)}


@register("mmoe")
class MMoE(_MixtureOfExperts):
  """Multi-gate MoE (Ma et al. 2018): fea_t = sum_k softmax(W_t h)_k expert_k(h), gate ``gate_<t>``.

  ``bottom_hidden`` (default none) adds the shared bottom of DRGrad's MMoE baseline.
  """

  @nn.compact
  def __call__(self, emb, batch, *, train: bool = False):
    self._check_tasks()
    feats = self._mixtures(emb, batch, [f"gate_{t}" for t in self.tasks], train)
    return {"logits": self._tower_logits(feats, train)}


@register("ple")
class PLE(_MultiTask):
  """Progressive layered extraction (Tang et al. 2020): one CGC layer ``cgc_<l>`` per entry of
  ``expert_hidden`` (default 2 layers of widths 512 and 256), each with ``num_shared_experts``
  shared and ``num_task_experts`` per-task experts; no shared gate on the last layer."""
  expert_hidden: Sequence[Sequence[int]] = ((512,), (256,))
  num_shared_experts: int = 4
  num_task_experts: int = 4
  gate_init_std: float | None = None

  @nn.compact
  def __call__(self, emb, batch, *, train: bool = False):
    self._check_tasks()
    x = self._inputs(emb, batch)
    task_in, shared_in = [x] * len(self.tasks), x
    n_layers = len(self.expert_hidden)
    for l, widths in enumerate(self.expert_hidden):
      task_in, shared_in = X.ExtractionLayer(
          tuple(self.tasks), num_shared=self.num_shared_experts,
          num_specific=self.num_task_experts, features=tuple(widths),
          activation=self.activation, norm=self.norm, dropout=self.dropout,
          kernel_init=self.kernel_init, bn_momentum=self.bn_momentum,
          gate_init_std=self.gate_init_std, last=l == n_layers - 1,
          name=f"cgc_{l}")(task_in, shared_in, train=train)
    return {"logits": self._tower_logits(task_in, train)}


@register("esmm")
class ESMM(_MultiTask):
  """Entire-space multi-task model (Ma et al. 2018; MTOReclib layout).

  Per task a ``bottom_<t>`` MLP(512, 256) and a tower; p_t = sigmoid(tower_t). Tasks are a
  sequential chain over impressions (e.g. ("click", "conversion")): ``probs[tasks[0]]`` = p_ctr
  and ``probs[tasks[k]]`` = p_k * probs[tasks[k - 1]] (CTCVR), trained on all impressions;
  ``extra["cvr_<tasks[k]>"]`` = p_k, the conditional CVR. ``parents`` (as in EKTM-A) replaces
  the chain by any tree below the click, e.g. (0, 0, 0) for parallel CVR tasks.
  """
  bottom_hidden: Sequence[int] = (512, 256)
  parents: Sequence[int] | None = None

  @nn.compact
  def __call__(self, emb, batch, *, train: bool = False):
    self._check_tasks(min_tasks=2)
    parents = resolve_parents("esmm", self.tasks, self.parents)
    x = self._inputs(emb, batch)
    feats = [self._mlp(self.bottom_hidden, f"bottom_{t}")(x, train=train) for t in self.tasks]
    cond = [jax.nn.sigmoid(z) for z in self._tower_logits(feats, train).values()]
    es = entire_space(cond, parents)
    return {"probs": dict(zip(self.tasks, es)),
            "extra": _per_task("cvr", self.tasks[1:], cond[1:])}


@register("aitm")
class AITM(_MultiTask):
  """Adaptive information transfer multi-task model (Xi et al. 2021) for sequential tasks.

  Per task a ``bottom_<t>`` MLP(512, 256); for t >= 2 the transferred token p = transfer_<t>
  (Linear) of the previous task's (already updated) feature and q = fea_t are merged by the shared
  ``attention`` (h1, h2, h3). The calibrator max(p_t - p_{t-1}, 0) is added to task t's loss as
  ``aux_losses[t]`` with weight ``calibrator_weight`` (0 reproduces MTReclib; the mean runs over
  real rows, ``example_mask``).
  """
  bottom_hidden: Sequence[int] = (512, 256)
  calibrator_weight: float = 0.6

  @nn.compact
  def __call__(self, emb, batch, *, train: bool = False):
    self._check_tasks(min_tasks=2)
    x = self._inputs(emb, batch)
    feats = [self._mlp(self.bottom_hidden, f"bottom_{t}")(x, train=train) for t in self.tasks]
    attention = X.TransferAttention(name="attention")
    d = feats[0].shape[-1]
    for k in range(1, len(self.tasks)):
      p = nn.Dense(d, name=f"transfer_{self.tasks[k]}")(feats[k - 1])
      feats[k] = attention(jnp.stack([p, feats[k]], axis=1))
    logits = self._tower_logits(feats, train)
    out = {"logits": logits}
    if self.calibrator_weight:
      probs = [jax.nn.sigmoid(logits[t]) for t in self.tasks]
      mask = _example_mask(batch, probs[0])
      out["aux_losses"] = {
          t: self.calibrator_weight * calibrator_loss(probs[k - 1], probs[k], mask)
          for k, t in enumerate(self.tasks) if k > 0}
    return out


# ------------------------------------------------------------------------------------------------
# DRGrad's Split-MMoE (mto_drgrad.md 3).


class _SplitTower(nn.Module):
  """Task 1's two towers ``dedicated`` (T1' on v1) and ``on_shared`` (T1'' on v_s), built from
  ``tower_kwargs`` (the parent's `_tower_kwargs`), so that they are identical to T2: DRGrad's
  router compares the three towers' gradients coordinate by coordinate."""
  tower_kwargs: Mapping[str, Any]

  @nn.compact
  def __call__(self, v1, vs, *, train: bool):
    tower = lambda name: X.Tower(**self.tower_kwargs, name=name)
    return tower("dedicated")(v1, train=train), tower("on_shared")(vs, train=train)


@register("split_mmoe")
class SplitMMoE(_MixtureOfExperts):
  """Split-MMoE, the DRGrad backbone (two tasks; tasks[0] is the primary task).

    h = bottom(x); e_k = expert_k(h); v1 = mix(gate_<t1>(h), e); v_s = mix(shared_gate(h), e)
    v_s <- ppnet(v_s, ID embeddings)            (only if ``ppnet_features`` is non-empty)
    z1' = tower_<t1>/dedicated(v1); z1'' = tower_<t1>/on_shared(v_s); z2 = tower_<t2>(v_s)
    z1 = mu' z1' + mu'' z1''                    (``mix="logit"``; ``"prob"`` mixes sigmoids)

  (mu', mu'') is read from the variable ``drgrad/mu`` when the caller passes that collection
  (DRGrad's updater writes it), else it is ``mu_init`` (plain Split-MMoE). ``route``, if given, is
  applied as ``v1, vs_a, vs_b = route(v1, v_s, v_s)`` before the towers (T1'' reads vs_a, T2
  reads vs_b), the hook for DRGrad's ``router_level="tower_inputs"``. The towers'
  subtrees for the router: ``tower_<t1>/dedicated``, ``tower_<t1>/on_shared``, ``tower_<t2>``.
  ``extra["split_dedicated"]`` and ``extra["split_on_shared"]`` hold z1' and z1''.
  """
  bottom_hidden: Sequence[int] = (256,)
  expert_hidden: Sequence[int] = (128, 64)
  tower_hidden: Sequence[int] = (32,)
  norm: str = "none"
  dropout: float = 0.0
  mix: str = "logit"
  mu_init: Sequence[float] = (0.5, 0.5)
  ppnet_features: Sequence[str] = ()
  route: Callable | None = None

  @nn.compact
  def __call__(self, emb, batch, *, train: bool = False):
    self._check_tasks(min_tasks=2, max_tasks=2)
    if self.mix not in ("logit", "prob"):
      raise ValueError(f"split_mmoe: mix {self.mix!r} is not one of ('logit', 'prob')")
    t1, t2 = self.tasks
    v1, vs = self._mixtures(emb, batch, [f"gate_{t1}", "shared_gate"], train)
    if self.ppnet_features:
      ids = inputs.flat_inputs(self.spec, emb, batch, names=set(self.ppnet_features))
      vs = X.PPNetGate(name="ppnet")(vs, ids)
    vs_a, vs_b = vs, vs
    if self.route is not None:
      v1, vs_a, vs_b = self.route(v1, vs_a, vs_b)
    z1a, z1b = _SplitTower(self._tower_kwargs(), name=f"tower_{t1}")(v1, vs_a, train=train)
    z2 = self._tower(f"tower_{t2}")(vs_b, train=train)
    mu = self._mu()
    extra = {"split_dedicated": z1a, "split_on_shared": z1b}
    if self.mix == "logit":
      return {"logits": {t1: mu[0] * z1a + mu[1] * z1b, t2: z2}, "extra": extra}
    p1 = mu[0] * jax.nn.sigmoid(z1a) + mu[1] * jax.nn.sigmoid(z1b)
    return {"probs": {t1: p1, t2: jax.nn.sigmoid(z2)}, "extra": extra}

  def _mu(self) -> jnp.ndarray:
    init = lambda: jnp.asarray(self.mu_init, jnp.float32)
    if self.is_initializing() or self.has_variable("drgrad", "mu"):
      return self.variable("drgrad", "mu", init).value
    return init()
