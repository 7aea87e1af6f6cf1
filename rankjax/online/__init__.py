"""Online adaptation for CTR models: ReLoop2's error memory and RAR's cross-stage augmentation.

Modules: ``memory`` (SimHash sketch error memory + compensation, reloop2.md 2.2-2.3), ``ctr`` (a
backbone wrapper exposing the hidden state), ``shiftstream_sim`` / ``crossstage_sim`` (simulators),
``reloop2`` (the slot protocol), ``rar`` / ``rar_pipeline`` (plug-in and its experiment).
"""
