"""Progress of long loops for both a terminal and a log file.

The framework trainer shows a tqdm bar. The paper families' own loops (MAL's pass, READER's
pretraining and chunks, the array fits of the online/causal methods) ran for tens of minutes
without a word. ``Progress`` gives them one interface: a tqdm bar when stderr is a terminal, and
otherwise (cluster jobs, ``nohup``, a redirected run) a plain line every ``every_s`` seconds with
the count, the rate and the time left, which is what a log needs. ``TQDM_DISABLE=1`` turns the
bar into lines; ``RANKJAX_PROGRESS_EVERY_S`` sets the interval of the lines (0 prints every
update, a negative value none).
"""
from __future__ import annotations

import os
import sys
import time

from tqdm import tqdm


def _default_every_s() -> float:
  return float(os.environ.get("RANKJAX_PROGRESS_EVERY_S", "60"))


class Progress:
  """``with Progress(total, "mal_natal") as p: ... p.update()``."""

  def __init__(self, total: int | None, desc: str, unit: str = "step",
               every_s: float | None = None, stream=None, bar: bool | None = None):
    self.total, self.desc, self.unit = total, desc, unit
    self.stream = stream if stream is not None else sys.stderr
    self.every_s = _default_every_s() if every_s is None else every_s
    if bar is None:
      bar = (hasattr(self.stream, "isatty") and self.stream.isatty()
             and os.environ.get("TQDM_DISABLE", "").lower() not in ("1", "true"))
    self.n, self.t0 = 0, time.monotonic()
    self._last = self.t0
    self._bar = (tqdm(total=total, desc=desc, unit=unit, file=self.stream, dynamic_ncols=True,
                      mininterval=1.0) if bar else None)

  def update(self, n: int = 1, **postfix) -> None:
    self.n += n
    if self._bar is not None:
      self._bar.update(n)
      if postfix:
        self._bar.set_postfix(postfix, refresh=False)
      return
    now = time.monotonic()
    if self.every_s >= 0 and now - self._last >= self.every_s:
      self._last = now
      self._line(now, postfix)

  def _line(self, now: float, postfix: dict) -> None:
    elapsed = max(now - self.t0, 1e-9)
    rate = self.n / elapsed
    units = self.unit + ("es" if self.unit.endswith(("s", "sh", "ch", "x")) else "s")
    text = f"{self.desc}: {self.n}" + (f"/{self.total}" if self.total else "") + f" {units}"
    text += f", {rate:.2f} {units}/s, {elapsed:.0f}s elapsed"
    if self.total and rate > 0:
      text += f", about {max(self.total - self.n, 0) / rate:.0f}s left"
    if postfix:
      text += ", " + ", ".join(f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}"
                                for k, v in postfix.items())
    print(text, file=self.stream, flush=True)

  def close(self) -> None:
    if self._bar is not None:
      self._bar.close()
      self._bar = None

  def __enter__(self) -> "Progress":
    return self

  def __exit__(self, *exc) -> None:
    self.close()
