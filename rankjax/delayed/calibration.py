"""Calibration of simulator knobs to published statistics (trace_sim, mac_sim)."""


def bisect(f, lo: float, hi: float, target: float, iters: int, increasing: bool = True) -> float:
  """The knob x in [lo, hi] with ``f(x) = target`` for a monotone ``f`` (``increasing`` or not)."""
  for _ in range(iters):
    mid = 0.5 * (lo + hi)
    if (f(mid) < target) == increasing:
      lo = mid
    else:
      hi = mid
  return 0.5 * (lo + hi)
