"""Test-only task classes named by ``_target_`` in subprocess tests (allowed through
``MIO_EVAL_ALLOWED_TARGETS``, as an operator registers their own prefixes)."""

from __future__ import annotations

import os
import time
from pathlib import Path

from mio_eval.tasks.tts import TTSTask


class SlowScoringTTS(TTSTask):
    """The TTS task whose scoring announces itself (a marker file) and then takes a while, so a
    test can send a signal while scoring runs."""

    def score(self, generated, *, work_dir):
        marker = Path(os.environ["MIO_EVAL_TEST_MARKER"])
        marker.write_text("scoring")
        for _ in range(600):
            time.sleep(0.1)
        return super().score(generated, work_dir=work_dir)
