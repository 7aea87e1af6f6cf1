"""Delayed feedback: TESLA (NetCVR), READER (post-click GMV), MAL (multi-attribution CVR)."""
