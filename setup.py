"""rankjax: accelerator-first ranking and recommendation on JAX/Flax.

The package metadata and dependency ranges live in pyproject.toml; this shim keeps
`python setup.py ...` and older pip/setuptools front ends working. Pinned versions for
reproducible environments: constraints.txt.
"""
import setuptools

setuptools.setup()
