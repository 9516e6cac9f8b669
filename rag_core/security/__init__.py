"""Protection of personal data and of compliance data: PII redaction, role-based access."""
