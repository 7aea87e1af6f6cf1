"""Loading pickles that must contain plain data only.

A pickle runs code only through the globals it names (``find_class``) and persistent ids; an
unpickler that refuses both cannot execute anything. Opcodes without globals can still build dicts,
tuples, strings or bytes, so the result is also walked and anything but the allowed plain types is
rejected, naming the file and where in the structure the offending value sits.
"""
from __future__ import annotations

import io
import pickle
from pathlib import Path

from rankjax.data.errors import DataError

PLAIN = (list, int, float)


class _Refused(pickle.UnpicklingError):
  pass


class _NoGlobals(pickle.Unpickler):

  def find_class(self, module, name):
    raise _Refused(f"global {module}.{name} is not allowed")

  def persistent_load(self, pid):
    raise _Refused("persistent ids are not allowed")


def _check(obj, allowed: tuple, path) -> None:
  # Iterative walk: journeys nest three deep and files hold ~10^6 values, recursion is not needed.
  stack = [(obj, "")]
  while stack:
    x, loc = stack.pop()
    t = type(x)
    if t not in allowed:
      raise DataError(f"{path}: pickle holds a {t.__name__} at {loc or 'top level'}; only "
                      f"{', '.join(a.__name__ for a in allowed)} are accepted")
    if t is list:
      if x and all(type(v) is int for v in x) and int in allowed:
        continue
      stack.extend((v, f"{loc}[{i}]") for i, v in enumerate(x))
    elif t is dict:
      stack.extend((k, f"{loc}<key {i}>") for i, k in enumerate(x))
      stack.extend((v, f"{loc}[{k!r}]") for k, v in x.items())


def load(path, allowed: tuple = PLAIN):
  """Unpickles ``path`` without executing anything and checks that it is plain data.

  Args:
    path: the pickle file.
    allowed: exact types accepted anywhere in the result (default: list, int, float; bool is not
      an int here).
  Raises:
    DataError: naming the file, for a global, a persistent id, a truncated or corrupt pickle, or a
      value of another type.
  """
  path = Path(path)
  if not path.exists():
    raise DataError(f"{path}: file not found")
  data = path.read_bytes()
  if not data:
    raise DataError(f"{path}: file is empty")
  try:
    obj = _NoGlobals(io.BytesIO(data)).load()
  except _Refused as e:
    raise DataError(f"{path}: refused to unpickle: {e}") from None
  except (pickle.UnpicklingError, EOFError, ValueError, IndexError, KeyError, TypeError,
          AttributeError, MemoryError) as e:
    raise DataError(f"{path}: truncated or corrupt pickle ({type(e).__name__}: {e})") from None
  _check(obj, tuple(allowed), path)
  return obj
