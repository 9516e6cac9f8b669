"""Compliance: the tamper-evident audit trail, its queries and reports, and retention (docs/compliance.md)."""
