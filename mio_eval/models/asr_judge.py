"""The ASR judge of speech-output tasks: Whisper when a checkpoint is given, else PocketSphinx."""

from __future__ import annotations

from mio_eval.models.pocketsphinx_asr import PocketSphinxASR
from mio_eval.models.whisper_asr import WhisperASR

__all__ = ["asr_judge"]


def asr_judge(
    *,
    whisper_path: str | None = None,
    language: str = "en",
    beam_size: int | None = None,
    max_new_tokens: int | None = None,
    device: str = "cpu",
) -> WhisperASR | PocketSphinxASR:
    """``whisper_path`` set: openai-whisper from that local checkpoint (greedy, no timestamps,
    temperature 0). Unset: PocketSphinx with the English model its PyPI package ships."""
    if whisper_path:
        return WhisperASR(path=whisper_path, name="whisper-judge", language=language, beam_size=beam_size,
                          max_new_tokens=max_new_tokens, device=device)
    return PocketSphinxASR(name="pocketsphinx-judge")


asr_judge._mio_eval_config_target_ = True  # a config factory (mio_eval.trust)
