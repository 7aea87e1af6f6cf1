"""Causal multi-touch attribution: ALM-MTA (alm_mta.md), its baselines, ``mta_causal_sim``."""
