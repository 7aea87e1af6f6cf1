"""A config's run-time quantities resolved against its dataset: intervals given in epochs, and
the split names it evaluates (checked before anything is built)."""
from __future__ import annotations


def every_steps(train_cfg, key: str, steps_per_epoch: int) -> int:
  """``train.<key>`` in steps, or ``train.<key>_epochs`` (if > 0) times the dataset's steps per
  epoch, so that configs never type a dataset's size."""
  epochs = float(train_cfg.get(f"{key}_epochs", 0.0) or 0.0)
  return max(1, round(epochs * steps_per_epoch)) if epochs > 0 else int(train_cfg[key])


def check_splits(config, dataset) -> str:
  """The validation split ("" = none, chosen explicitly), after checking that it and every final
  split exist: a misspelt name must not silently train without validation, early stopping or
  test metrics."""
  have = sorted(dataset.splits)
  valid = config.eval.get("validation_split", "validation")
  named = [("eval.validation_split", valid)] + [
      ("eval.final_splits", f) for f in config.eval.get("final_splits", ("test",))]
  for key, split in named:
    if split and split not in dataset.splits:
      hint = " ('valid' is now called 'validation')" if split == "valid" else ""
      raise ValueError(f"config {key}: dataset {dataset.name!r} has no split {split!r}{hint}; its "
                       f"splits are {have} (eval.validation_split='' trains without validation)")
  return valid
