"""Which leaves are shared and which are owned by one task.

An *owner spec* says, for every leaf of the (un-stacked) gradient tree, which task owns it
(-1 = shared). Accepted forms, resolved at trace time (the tree structure is static):

* ``None``: every leaf is shared.
* a callable ``path -> int``; ``path`` is the tuple of the leaf's keys as strings, e.g.
  ``("dense", "params", "tower_ctr", "dense_0", "kernel")`` or ``("rows", "item_table")``.
  ``by_name({name: task})`` builds one: a leaf is owned by ``task`` when ``name`` equals one of
  its path components, so the trainer maps its tower/gate module names to task indices.
* a pytree of ints with the structure of the gradient tree without the task axis (any mapping
  is read as such a pytree, never as a name map: use ``by_name`` for that).

Callables work unchanged on the dense tree and on the compact
``{"dense": ..., "rows": ...}`` tree, which is why they are the recommended forms.
"""
from typing import Any, Callable, Mapping

import jax

SHARED = -1


def path_str(path) -> tuple:
  """A key path of `tree_flatten_with_path` as a tuple of strings."""
  out = []
  for k in path:
    if isinstance(k, jax.tree_util.DictKey):
      out.append(str(k.key))
    elif isinstance(k, jax.tree_util.GetAttrKey):
      out.append(str(k.name))
    elif isinstance(k, jax.tree_util.SequenceKey):
      out.append(str(k.idx))
    else:
      out.append(str(k))
  return tuple(out)


def leaf_paths(tree) -> list:
  return [path_str(p) for p, _ in jax.tree_util.tree_flatten_with_path(tree)[0]]


def by_name(names: Mapping[str, int]) -> Callable[[tuple], int]:
  """Owner function: a leaf whose path contains component `name` is owned by `names[name]`."""
  names = dict(names)

  def owner(path):
    hits = {names[p] for p in path if p in names}
    if len(hits) > 1:
      raise ValueError(f"leaf {'/'.join(path)} matches owners of several tasks: {sorted(hits)}")
    return hits.pop() if hits else SHARED

  return owner


def resolve(spec: Any, tree, num_tasks: int = None) -> list:
  """One owner int per leaf of `tree` (flatten order)."""
  paths = leaf_paths(tree)
  if spec is None:
    owners = [SHARED] * len(paths)
  elif callable(spec):
    owners = [int(spec(p)) for p in paths]
  else:
    flat = jax.tree_util.tree_leaves(spec)
    if len(flat) != len(paths):
      raise ValueError(f"owner tree has {len(flat)} leaves, gradient tree has {len(paths)}")
    owners = [int(o) for o in flat]
  if num_tasks is not None:
    bad = [(p, o) for p, o in zip(paths, owners) if not SHARED <= o < num_tasks]
    if bad:
      raise ValueError(f"owner out of range [-1, {num_tasks}): {bad[:3]}")
  return owners


def shared_mask(spec: Any, tree, num_tasks: int = None) -> list:
  return [o == SHARED for o in resolve(spec, tree, num_tasks)]
