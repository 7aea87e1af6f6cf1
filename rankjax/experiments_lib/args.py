"""``get_config(arg)`` argument strings: ``"dataset=census,model=mmoe,seed=2"`` or ``"runlocal"``.

A bare word is a flag set to True. Values are read as bool, None, int, float, else string, so
the same string round-trips through `format_arg` (the sweep names its runs with it).
"""
from __future__ import annotations

from typing import Any, Mapping

MTO_PREFIX = "mto."  # "mto.calpha=0.4": a hyper-parameter of the selected MTO method


def coerce(value: str) -> Any:
  low = value.lower()
  if low in ("true", "false"):
    return low == "true"
  if low == "none":
    return None
  for cast in (int, float):
    try:
      return cast(value)
    except ValueError:
      pass
  return value


def parse_arg(arg: str | None) -> dict[str, Any]:
  out = {}
  for item in (arg or "").split(","):
    item = item.strip()
    if not item:
      continue
    key, sep, value = item.partition("=")
    out[key.strip()] = coerce(value.strip()) if sep else True
  return out


def format_arg(opts: Mapping[str, Any]) -> str:
  """Inverse of `parse_arg` (True flags stay key=True so that the round trip is exact)."""
  return ",".join(f"{k}={v}" for k, v in opts.items())


def resolve(arg: str | Mapping[str, Any] | None, defaults: Mapping[str, Any]) -> tuple[dict, dict]:
  """(options, mto hyper-parameters): ``defaults`` updated from ``arg``.

  A key that is neither a default nor ``mto.<name>`` is an error listing the valid keys, so a
  typo in a sweep never silently runs the default.
  """
  given = parse_arg(arg) if isinstance(arg, str) or arg is None else dict(arg)
  opts, hparams = dict(defaults), {}
  for k, v in given.items():
    if k.startswith(MTO_PREFIX):
      hparams[k[len(MTO_PREFIX):]] = v
    elif k in defaults:
      opts[k] = v
    else:
      raise ValueError(f"unknown config option {k!r}; valid: {sorted(defaults)} and "
                       f"{MTO_PREFIX}<hyper-parameter of the MTO method>")
  return opts, hparams


def pick(opts: Mapping[str, Any], key: str, default):
  """``opts[key]``, or ``default`` where the option is unset (None)."""
  return default if opts.get(key) is None else opts[key]


def run_name(opts: Mapping[str, Any]) -> str:
  """A file-system safe name of a run, e.g. ``dataset-census__model-mmoe__seed-0``."""
  def clean(v):
    return str(v).replace("/", "_").replace("=", "-").replace(",", "_").replace(" ", "")
  return "__".join(f"{k}-{clean(v)}" for k, v in opts.items())
