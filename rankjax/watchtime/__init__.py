"""Watch time and long-term value (cwm_watch_time.md, d2co_watch_time.md, ltv_video.md).

The family's own pieces: simulators (``watchtime_sim``, ``feedvisit_sim``), label transforms and
their inverses (``labels``), the counterfactual censored likelihood and Tweedie loss (``losses``),
D2Co's per-duration mixture correction (``d2co``), PDQ and attribution targets (``ltv``), the
author-LTV dual stream (``streams``) and the small trainer the experiments share (``fit``).
"""
