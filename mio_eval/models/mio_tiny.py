"""``python -m mio_eval.models.mio_tiny OUT_DIR``: the documented command that builds the tiny MIO
checkpoint; the builder is ``mio_eval.models.mio.tiny`` (kept as the stable CLI and import path)."""

import sys

from mio_eval.models.mio.tiny import (
    SCRIPT_FRAMES,
    SCRIPT_TEXT,
    SPECIAL_PIECES,
    TINY_SPEECH_CONFIG,
    build_tiny_mio,
    main,
    script_tokens,
)

__all__ = ["build_tiny_mio", "script_tokens", "main", "TINY_SPEECH_CONFIG", "SPECIAL_PIECES", "SCRIPT_TEXT",
           "SCRIPT_FRAMES"]

if __name__ == "__main__":
    sys.exit(main())
