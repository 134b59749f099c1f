"""Model adapters, one module per backend; each imports its heavy libraries in ``load()``."""
