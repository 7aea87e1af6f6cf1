"""The synthetic multi-task generators as pure numpy functions of a seed (the loaders that wrap
them into datasets, with their config keys, are in ``synthetic.py``): the MMoE regression pair
(``mtl_data.md`` 3), the DRGrad generator (``mto_drgrad.md`` 7) and the EKTM CTR -> CVR cascade
(``ektm.md`` 6.3)."""
from __future__ import annotations

import math
from typing import Mapping

import numpy as np
from numpy.polynomial import hermite_e

from rankjax.metrics import classification

DRGRAD_NUM_SPARSE = 6  # printed in the paper


# ------------------------------------------------------------------------------------------------
# MMoE generator.


def _unit_pair(rng: np.random.Generator, dim: int) -> tuple[np.ndarray, np.ndarray]:
  """Two orthonormal vectors drawn as keras-mmoe does (z-scored u1, Gram-Schmidt u2)."""
  if dim < 2:
    raise ValueError(f"num_features must be >= 2 to hold two orthogonal directions, got {dim}")
  g1 = rng.standard_normal(dim)
  # Dividing the z-score by sqrt(d) gives unit norm exactly (population std).
  u1 = (g1 - g1.mean()) / g1.std() / math.sqrt(dim)
  g2 = rng.standard_normal(dim)
  g2 = g2 - (g2 @ u1) * u1
  return u1, g2 / np.linalg.norm(g2)


def _sinusoid_response(z: np.ndarray, alpha: np.ndarray, beta: np.ndarray) -> np.ndarray:
  """f(z) = z + sum_i sin(alpha_i z + beta_i), broadcast over the leading axes of ``z``."""
  return z + np.sin(z[..., None] * alpha + beta).sum(-1)


def mmoe_regression(num_examples: int, *, num_features: int = 100, correlation: float = 0.9,
                    scale: float = 1.0, num_sinusoids: int = 10, noise_std: float = 0.1,
                    seed: int = 0) -> dict[str, np.ndarray]:
  """The MMoE synthetic data (float64), in the reference RNG order of ``mtl_data.md`` 3.2.

  y_k = w_k.x + sum_i sin(alpha_i w_k.x + beta_i) + eps_k, with cos(w_1, w_2) = ``correlation``
  and |w_k| = ``scale``. For a fixed seed task 1 does not depend on ``correlation``.

  Returns:
    ``x`` [n, d], ``task1`` and ``task2`` [n], and the ground truth ``w1``, ``w2``, ``alpha``,
    ``beta``.
  """
  if not -1.0 <= correlation <= 1.0:
    raise ValueError(f"correlation must be in [-1, 1], got {correlation}")
  rng = np.random.default_rng(seed)
  u1, u2 = _unit_pair(rng, num_features)
  alpha = rng.standard_normal(num_sinusoids)
  beta = rng.standard_normal(num_sinusoids)
  x = rng.standard_normal((num_examples, num_features))
  eps1 = noise_std * rng.standard_normal(num_examples)
  eps2 = noise_std * rng.standard_normal(num_examples)
  w1 = scale * u1
  w2 = scale * (correlation * u1 + math.sqrt(max(1.0 - correlation ** 2, 0.0)) * u2)
  y1 = _sinusoid_response(x @ w1, alpha, beta) + eps1
  y2 = _sinusoid_response(x @ w2, alpha, beta) + eps2
  return {"x": x, "task1": y1, "task2": y2, "w1": w1, "w2": w2, "alpha": alpha, "beta": beta}


def mmoe_expected_pearson(alpha: np.ndarray, beta: np.ndarray, *, scale: float,
                          correlation: float, noise_std: float, num_nodes: int = 80) -> float:
  """Population Pearson correlation of the two MMoE targets, by 2-D Gauss-Hermite quadrature.

  w_1.x and w_2.x are jointly Gaussian (variance scale^2, correlation ``correlation``), so the
  label correlation is an expectation over two standard normals; the sinusoids make it smaller
  than ``correlation`` and dependent on the drawn alpha, beta. Used to check the generator.
  """
  nodes, weights = hermite_e.hermegauss(num_nodes)
  weights = weights / weights.sum()
  a, b = np.meshgrid(nodes, nodes, indexing="ij")
  w = np.outer(weights, weights)
  rho_perp = math.sqrt(max(1.0 - correlation ** 2, 0.0))
  f1 = _sinusoid_response(scale * a, alpha, beta)
  f2 = _sinusoid_response(scale * (correlation * a + rho_perp * b), alpha, beta)
  c1 = f1 - (w * f1).sum()
  c2 = f2 - (w * f2).sum()
  cov = (w * c1 * c2).sum()
  var1 = (w * c1 * c1).sum() + noise_std ** 2
  var2 = (w * c2 * c2).sum() + noise_std ** 2
  return float(cov / math.sqrt(var1 * var2))


# ------------------------------------------------------------------------------------------------
# DRGrad generator.


def drgrad_raw(num_examples: int, *, cos_theta: float = 0.5, num_dense: int = 26,
               label1_noise_std: float = math.sqrt(0.002),
               label2_noise_std: float | None = math.sqrt(0.002),
               label2_noise_scale: float | None = None, num_reference_rows: int | None = None,
               seed: int = 0) -> dict[str, np.ndarray]:
  """The DRGrad synthetic data (float64), with the completions of ``mto_drgrad.md`` section 7.

  Sparse feature i (1..6): e^{rand * randint(1, i+2)} + rand * randint(1, i+2)^{i/2 + 1}; dense
  features N(0, 1); x = [sparse, dense] and, with vector terms summed over the coordinates,
    label1 = 10 (sum 4 x^2/|x^2| + sum 5 e^{x/|x|} + sum 6 sin(x) + N(0.01, label1_noise_std^2)),
    label2 = cos_theta label1 + N(0.01, s^2),
  where s = ``label2_noise_std`` or, if ``label2_noise_scale`` is given,
  s = label2_noise_scale * |cos_theta| * std(label1[:num_reference_rows]).

  Returns:
    ``sparse`` [n, 6] raw values, ``dense`` [n, num_dense], ``label1``, ``label2`` [n] and
    ``label2_noise_std`` (the std actually used, as a 0-d array).
  """
  rng = np.random.default_rng(seed)
  n = num_examples
  sparse = np.empty((n, DRGRAD_NUM_SPARSE))
  for i in range(1, DRGRAD_NUM_SPARSE + 1):
    # Fixed stream order per feature: rand, rand, randint, randint.
    r1 = rng.random(n)
    r2 = rng.random(n)
    k1 = rng.integers(1, i + 3, n)  # inclusive upper bound i + 2
    k2 = rng.integers(1, i + 3, n)
    sparse[:, i - 1] = np.exp(r1 * k1) + r2 * k2.astype(np.float64) ** (i / 2 + 1)
  dense = rng.standard_normal((n, num_dense))
  noise1 = rng.standard_normal(n)
  noise2 = rng.standard_normal(n)

  x = np.concatenate([sparse, dense], axis=1)
  x2 = x * x
  terms = (4.0 * x2 / np.linalg.norm(x2, axis=1, keepdims=True)
           + 5.0 * np.exp(x / np.linalg.norm(x, axis=1, keepdims=True))
           + 6.0 * np.sin(x)).sum(axis=1)
  label1 = 10.0 * (terms + 0.01 + label1_noise_std * noise1)
  if label2_noise_scale is not None:
    ref = label1[:num_reference_rows] if num_reference_rows else label1
    noise2_std = label2_noise_scale * abs(cos_theta) * float(ref.std())
  elif label2_noise_std is not None:
    noise2_std = float(label2_noise_std)
  else:
    raise ValueError("drgrad_raw: give label2_noise_std or label2_noise_scale")
  label2 = cos_theta * label1 + 0.01 + noise2_std * noise2
  return {"sparse": sparse, "dense": dense, "label1": label1, "label2": label2,
          "label2_noise_std": np.asarray(noise2_std)}


# ------------------------------------------------------------------------------------------------
# EKTM multi-CVR generator (ektm.md 6.3).

EKTM = "synthetic_ektm"
EKTM_CVR_RATES = (0.2, 0.1, 0.03)


def ektm_tasks(num_cvr_tasks: int) -> tuple[str, ...]:
  """("click", "cvr1", ..., "cvr<K>"): task 0 is CTR, the convention of the CTR -> CVR models."""
  return ("click",) + tuple(f"cvr{k}" for k in range(1, num_cvr_tasks + 1))


def ektm_pattern(parents) -> str:
  """"sequential" for the chain (0, 1, ..., K-1), "parallel" for all-click parents, else "mixed"."""
  parents = tuple(parents)
  if parents == tuple(range(len(parents))):
    return "sequential"
  return "parallel" if all(p == 0 for p in parents) else "mixed"


def orthonormal_rows(rng: np.random.Generator, count: int, dim: int) -> np.ndarray:
  """``count`` orthonormal rows [count, dim]: Gram-Schmidt, in row order, of Gaussian draws.

  QR is Householder-based (stabler than textbook Gram-Schmidt); fixing diag(R) > 0 makes Q
  exactly the Gram-Schmidt basis.
  """
  if count > dim:
    raise ValueError(f"{EKTM}: num_features must be >= {count} to hold {count} orthogonal "
                     f"directions, got {dim}")
  q, r = np.linalg.qr(rng.standard_normal((count, dim)).T)
  return (q * np.where(np.diag(r) < 0, -1.0, 1.0)).T


def _latent(score: np.ndarray, uniform: np.ndarray) -> np.ndarray:
  # y = 1[u < sigmoid(score + b)] = 1[logit(u) - score < b]: labels and bias share this variable.
  with np.errstate(divide="ignore"):
    return np.log(uniform) - np.log1p(-uniform) - score


def bias_for_rate(score: np.ndarray, uniform: np.ndarray, rate: float,
                  at_risk: np.ndarray) -> float:
  """The bias b with exactly round(rate * m) positives among the m ``at_risk`` rows.

  The realised count #{t < b}, t = `_latent`, is a non-decreasing step function of b, so the
  root a bisection on the realised rate converges to is any b between the m-th and (m+1)-th
  smallest t; it is computed here directly, as the midpoint (exact, no tolerance). Calibrating on
  the realised draws rather than on E[sigmoid(score + b)] keeps the rate of a task with few
  at-risk rows on target (sequential CVR 3 has about 500 of them in 500k rows: a 25% relative
  sampling error otherwise). With no at-risk row the labels are all 0 and b is fitted on all rows.
  """
  t = np.sort(_latent(score, uniform)[at_risk if at_risk.any() else slice(None)])
  m = int(round(rate * len(t)))
  lo = t[m - 1] if m > 0 else t[0] - 1.0
  hi = t[m] if m < len(t) else t[-1] + 1.0
  return float(lo + hi) / 2.0


def check_ektm_args(num_cvr_tasks: int, rho: float, parents, cvr_rates, ctr_rate: float,
                    num_sinusoids: int) -> tuple[tuple[int, ...], tuple[float, ...]]:
  """(parents, cvr_rates) as tuples, or a ValueError naming the key and the value."""
  k = num_cvr_tasks
  if k < 1:
    raise ValueError(f"{EKTM}: num_cvr_tasks must be >= 1, got {k}")
  if not -1.0 <= rho <= 1.0:
    raise ValueError(f"{EKTM}: rho must be in [-1, 1], got {rho}")
  if num_sinusoids < 0:
    raise ValueError(f"{EKTM}: num_sinusoids must be >= 0, got {num_sinusoids}")
  parents = tuple(range(k)) if parents is None else tuple(parents)
  # Task k may only hang below the click or an earlier CVR task, so labels are drawn in order.
  if len(parents) != k or any(not isinstance(p, (int, np.integer)) or isinstance(p, bool)
                              or not 0 <= p < i + 1 for i, p in enumerate(parents)):
    raise ValueError(f"{EKTM}: parents must list, for each CVR task k = 1..{k}, an integer parent "
                     f"in [0, k - 1] (0 = click), got {list(parents)}")
  cvr_rates = tuple(float(r) for r in cvr_rates)
  if len(cvr_rates) != k:
    raise ValueError(f"{EKTM}: cvr_rates needs {k} values (num_cvr_tasks), got {list(cvr_rates)}")
  for key, rate in [("ctr_rate", ctr_rate)] + [(f"cvr_rates[{i}]", r)
                                               for i, r in enumerate(cvr_rates)]:
    if not 0.0 < rate < 1.0:
      raise ValueError(f"{EKTM}: {key} must be in (0, 1), got {rate}")
  return tuple(int(p) for p in parents), cvr_rates


def ektm_raw(num_examples: int, *, num_features: int = 64, num_cvr_tasks: int = 3,
             rho: float = 0.8, parents=None, cvr_rates=EKTM_CVR_RATES, ctr_rate: float = 0.05,
             num_sinusoids: int = 5, seed: int = 0) -> dict:
  """The EKTM-A multi-CVR data of ``ektm.md`` 6.3 (float64 scores, boolean labels).

  x ~ N(0, I_d); u_0 (CTR), u_c (shared CVR) and u_1..u_K (private) are orthonormal;
  w_0 = u_0 and w_k = rho u_c + sqrt(1 - rho^2) u_k, so cos(w_j, w_k) = rho^2 between CVR tasks
  and 0 with CTR; a_k = w_k.x + sum_i sin(alpha_i w_k.x + beta_i) + b_k. click ~ B(sigmoid(a_0))
  on every row; y_k ~ B(sigmoid(a_k)) where the parent label y_{parents[k-1]} is 1, else 0, so
  every label is an entire-space label. Each b_k is `bias_for_rate` over the rows whose parent
  is positive (all rows for CTR), so the realised rates given the parent equal the targets.

  RNG draw order, one ``np.random.default_rng(seed)`` stream: (1) [K + 2, d] normals, rows
  Gram-Schmidt-ed into u_0, u_c, u_1..u_K; (2) alpha [m]; (3) beta [m]; (4) x [n, d];
  (5) uniforms [n, K + 1] for the Bernoulli draws (column 0 click, column k CVR k), drawn for
  every row so that no draw depends on a label. So for a fixed seed x and the click labels do
  not depend on rho, parents or cvr_rates.

  Returns:
    ``x`` [n, d]; ``labels`` [n, K + 1] bool (column k = task k); ``probs`` [n, K + 1] =
    sigmoid(a_k) (the conditional probability given the parent); ``bias`` [K + 1];
    ``w`` [K + 1, d]; ``directions`` [K + 2, d] (u_0, u_c, u_1..u_K); ``alpha``, ``beta``;
    ``parents`` [K]; ``rates`` [K + 1] (the targets, CTR first); ``es_probs`` [n, K + 1], the
    true entire-space probabilities (what the models' impression-level outputs estimate).
  """
  parents, cvr_rates = check_ektm_args(num_cvr_tasks, rho, parents, cvr_rates, ctr_rate,
                                       num_sinusoids)
  k = num_cvr_tasks
  rng = np.random.default_rng(seed)
  directions = orthonormal_rows(rng, k + 2, num_features)
  alpha = rng.standard_normal(num_sinusoids)
  beta = rng.standard_normal(num_sinusoids)
  x = rng.standard_normal((num_examples, num_features))
  uniform = rng.random((num_examples, k + 1))

  u0, uc, private = directions[0], directions[1], directions[2:]
  w = np.vstack([u0, rho * uc + math.sqrt(max(1.0 - rho ** 2, 0.0)) * private])
  score = _sinusoid_response(x @ w.T, alpha, beta)  # a_k without its bias, [n, K + 1]
  rates = (ctr_rate,) + cvr_rates
  labels = np.zeros((num_examples, k + 1), bool)
  bias = np.zeros(k + 1)
  for j in range(k + 1):  # parents precede children, so the parent's labels exist
    at_risk = np.ones(num_examples, bool) if j == 0 else labels[:, parents[j - 1]]
    bias[j] = bias_for_rate(score[:, j], uniform[:, j], rates[j], at_risk)
    labels[:, j] = at_risk & (_latent(score[:, j], uniform[:, j]) < bias[j])
  probs = 1.0 / (1.0 + np.exp(-(score + bias)))
  return {"x": x, "labels": labels, "probs": probs, "bias": bias, "w": w,
          "directions": directions, "alpha": alpha, "beta": beta, "parents": np.asarray(parents),
          "rates": np.asarray(rates), "es_probs": entire_space_probs(probs, parents)}


def entire_space_probs(probs: np.ndarray, parents) -> np.ndarray:
  """p_0^ES = p_0, p_k^ES = p_k p_{parents[k-1]}^ES (ektm.md 2) for [n, K + 1] probabilities."""
  out = probs.copy()
  for k, p in enumerate(parents, start=1):
    out[:, k] = probs[:, k] * out[:, p]
  return out


def ektm_label_stats(labels: Mapping[str, np.ndarray], tasks: tuple[str, ...],
                     parents: tuple[int, ...], oracle: Mapping[str, np.ndarray]) -> dict:
  """Rows, and per task the positives, the parent's positives (rows for CTR), the rate given
  the parent, the entire-space rate and the oracle AUC (of the true entire-space probability
  ``oracle[t]``: the ceiling a model's AUC on these rows can reach), of one set of rows."""
  rows = len(labels[tasks[0]])
  positives = {t: int(np.sum(labels[t])) for t in tasks}
  at_risk = {tasks[0]: rows}
  at_risk.update({t: positives[tasks[p]] for t, p in zip(tasks[1:], parents)})
  return {
      "rows": rows,
      "positives": positives,
      "parent_positives": at_risk,
      "rate_given_parent": {t: positives[t] / at_risk[t] if at_risk[t] else math.nan
                            for t in tasks},
      "entire_space_rate": {t: positives[t] / rows for t in tasks},
      "oracle_auc": {t: classification.auc(labels[t], oracle[t]) for t in tasks},
  }
