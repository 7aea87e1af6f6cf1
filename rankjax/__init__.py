"""rankjax: accelerator-first ranking and recommendation on JAX/Flax.

The notebook API (``rankjax.load_config``, ``load_dataset``, ``build_model``, ``fit``,
``evaluate``, ...) lives in ``rankjax.api`` and is imported on first use, so ``import rankjax``
stays cheap. Importing it sets glibc's malloc thresholds (``rankjax/host_malloc.py``;
``RANKJAX_MALLOC_TUNING=0`` turns that off).
"""
from rankjax import host_malloc as _host_malloc
from rankjax.version import __version__

# Before any XLA:CPU buffer exists: keeps each step's temporaries mapped (host_malloc.py).
_host_malloc.configure()

_API = ("load_config", "load_dataset", "dataset_names", "model_names", "build_model", "fit",
        "evaluate", "summary", "Run")
__all__ = ("__version__",) + _API


def __getattr__(name):
  if name in _API:
    from rankjax import api  # pylint: disable=g-import-not-at-top
    return getattr(api, name)
  raise AttributeError(f"module 'rankjax' has no attribute {name!r}")
