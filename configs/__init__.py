"""Hydra configs shipped as package data (``pkg://mio_eval.configs``)."""
