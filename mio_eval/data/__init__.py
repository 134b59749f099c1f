"""Data shipped with the package (small, public-domain) for demos and tests."""
