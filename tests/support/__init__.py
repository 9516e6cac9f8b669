"""Server launchers, corpora and helpers the tiers share; benchmarks may use them too."""
