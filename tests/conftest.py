"""Shared fixtures. Tests build everything they need (tiny models, data in exact formats)."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def _no_hub(monkeypatch):
    # Nothing may reach a model hub; a test that tries fails loudly instead of hanging.
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("TRANSFORMERS_OFFLINE", "1")
    monkeypatch.delenv("HYDRA_FULL_ERROR", raising=False)
    # Test-only adapters and tasks live in test modules: the operator's allow-list (mio_eval.trust)
    # names them, as a user registers their own prefixes.
    monkeypatch.setenv("MIO_EVAL_ALLOWED_TARGETS", "test_image_tasks,test_mme_unify,trust_fixtures")


@pytest.fixture(scope="session")
def tiny_whisper(tmp_path_factory):
    """A random-initialised Whisper saved in openai-whisper's checkpoint format."""
    import torch
    from whisper.model import ModelDimensions, Whisper

    torch.manual_seed(0)
    dims = ModelDimensions(n_mels=80, n_audio_ctx=1500, n_audio_state=64, n_audio_head=2, n_audio_layer=2,
                           n_vocab=51865, n_text_ctx=448, n_text_state=64, n_text_head=2, n_text_layer=2)
    model = Whisper(dims)
    path = tmp_path_factory.mktemp("whisper") / "tiny-random.pt"
    torch.save({"dims": dims.__dict__, "model_state_dict": model.state_dict()}, path)
    return path
