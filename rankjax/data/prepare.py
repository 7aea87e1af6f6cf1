r"""Builds a dataset and prints its statistics (compare them with the dataset card).

  python -m rankjax.data.prepare census_income_kdd
  python -m rankjax.data.prepare criteo_attribution_journeys --notfds --option max_len=20
  python -m rankjax.data.prepare tabular --schema my_schema.yaml
  python -m rankjax.data.prepare --list

By default the TFDS builder runs too (array_record files under ``data_dir/<name>/``); the
columnar store is written under ``data_dir/columnar/<name>/<version>/<config>/``.
"""
from __future__ import annotations

import json

from absl import app
from absl import flags

from rankjax.data import build
from rankjax.data import columnar

_MANUAL_DIR = flags.DEFINE_string("manual_dir", None, "Source files (default: the shared folder).")
_DATA_DIR = flags.DEFINE_string("data_dir", None, "Prepared data root (default $RANKJAX_DATA_DIR "
                                "or ~/rankjax_datasets).")
_TFDS = flags.DEFINE_bool("tfds", True, "Also build the TFDS array_record files.")
_FORCE = flags.DEFINE_bool("force", False, "Rebuild even if prepared data exist.")
_OPTION = flags.DEFINE_multi_string("option", [], "Dataset option key=value (value parsed as "
                                    "JSON when it is valid JSON).")
_SCHEMA = flags.DEFINE_string("schema", None, "Schema file for the 'tabular' dataset.")
_LIST = flags.DEFINE_bool("list", False, "List buildable datasets and their options, then exit.")


def parse_options(items) -> dict:
  out = {}
  for item in items:
    if "=" not in item:
      raise app.UsageError(f"--option needs key=value, got {item!r}")
    k, v = item.split("=", 1)
    try:
      out[k] = json.loads(v)
    except json.JSONDecodeError:
      out[k] = v
  return out


def headline(name: str, stats: dict) -> str:
  """Rows and label rates per split, one line each, above the full statistics."""
  lines = [f"dataset {name}"]
  for split, s in (stats.get("splits") or {}).items():
    if not isinstance(s, dict):
      continue
    parts = [f"{split}: {s.get('rows')} rows"]
    for k, v in s.items():
      if isinstance(v, dict) and "rate" in v:
        parts.append(f"{k} {v['positives']} ({100 * v['rate']:.2f}%)")
      elif isinstance(v, dict) and "mean" in v:
        parts.append(f"{k} mean {v['mean']:.4g}")
      elif k.startswith("distinct_"):
        parts.append(f"{k[len('distinct_'):]}s {v}")
    lines.append("  " + ", ".join(parts))
  return "\n".join(lines)


def _table_rows(ds) -> str:
  return "\n".join(f"  {split}: {len(next(iter(cols.values())))} rows"
                   for split, cols in ds.splits.items() if cols)


def run(name: str, *, manual_dir=None, data_dir=None, use_tfds=True, force=False, options=None,
        schema=None):
  if name == "tabular":
    from rankjax.data import tabular  # pylint: disable=g-import-not-at-top
    if schema is None:
      raise app.UsageError("tabular needs --schema")
    return tabular.load(schema, manual_dir=manual_dir, data_dir=data_dir, force=force)
  return build.build(name, manual_dir=manual_dir, data_dir=data_dir, use_tfds=use_tfds,
                     force=force, **(options or {}))


def main(argv):
  if _LIST.value:
    for name, defn in sorted(build.definitions().items()):
      print(f"{name} (v{defn.version}): options {dict(defn.defaults)}")
    return
  if len(argv) != 2:
    raise app.UsageError("usage: python -m rankjax.data.prepare NAME [flags]")
  ds = run(argv[1], manual_dir=_MANUAL_DIR.value, data_dir=_DATA_DIR.value, use_tfds=_TFDS.value,
           force=_FORCE.value, options=parse_options(_OPTION.value), schema=_SCHEMA.value)
  stats = ds.info["stats"]
  print(headline(ds.name, stats))
  if not stats.get("splits"):
    print(_table_rows(ds))
  print(f"columnar store: {ds.info['path']}")
  print(json.dumps(stats, indent=1, sort_keys=True, default=columnar.json_default))


if __name__ == "__main__":
  app.run(main)
