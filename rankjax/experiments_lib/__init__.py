"""Shared pieces of the multi-task experiments (experiments/pub, drgrad, ektm).

* `args`: ``get_config(arg)`` strings ``"key=value,key=value"`` (and bare flags like ``runlocal``).
* `mtl`: dataset, model, MTO-method and protocol blocks every multi-task config is built from.
* `sweep`: the resumable grid runner (one ``train_offline`` per run, small results JSON).
* `report`: mean +- std tables over seeds and per-task Pareto scatter plots.
"""
