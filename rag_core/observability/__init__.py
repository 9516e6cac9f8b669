"""What the running system reports about itself: per-stage latency (and, next, the query log and metrics)."""
