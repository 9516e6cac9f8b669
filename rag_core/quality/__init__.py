"""Measured retrieval quality: BEIR evaluation (and, next, per-query signals and drift)."""
