"""``mio-eval validate task=... model=... [overrides]``: check a run before starting it.

Composes the config exactly as ``mio-eval`` would, builds the task and the model (no weights
are loaded), loads the data set (files present, format parsable), compares the sample count
with the split's known size, checks that every media file a sample references exists, and that
the model's and the scorers' checkpoint paths exist. One line per problem on stderr; exit 2 if
there is any, 0 otherwise. Nothing is written.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, Sequence

from mio_eval.errors import MioEvalError

__all__ = ["validate", "main"]

_SHOWN = 3


# Metadata keys that name a file scoring will read (ground-truth image of text-to-image,
# reference recording for speaker similarity, ...).
_REFERENCE_KEYS = ("image", "reference_image", "reference_audio", "reference_video", "prompt_audio")


def _media_paths(sample) -> list[str]:
    paths = [p.path for p in sample.parts if getattr(p, "path", None)]
    paths += [str(sample.metadata[k]) for k in _REFERENCE_KEYS if isinstance(sample.metadata.get(k), str)]
    return list(dict.fromkeys(paths))


def _checkpoint_paths(obj: Any, label: str) -> list[tuple[str, str]]:
    """(label, path) of the checkpoint files an adapter or scorer declares in ``path``."""
    found = []
    path = getattr(obj, "path", None)
    if isinstance(path, (str, Path)) and str(path):
        found.append((label, str(path)))
    for extra in ("vocoder_path", "speaker_embedding"):
        value = getattr(obj, extra, None)
        if isinstance(value, (str, Path)) and str(value):
            found.append((f"{label}.{extra}", str(value)))
    return found


def validate(overrides: Sequence[str]) -> tuple[list[str], dict[str, Any]]:
    """Problems found (empty = ready to run) and a summary of what was checked."""
    from mio_eval.api import build, compose

    summary: dict[str, Any] = {}
    try:
        cfg = compose(list(overrides))
        task, model = build(cfg)
    except MioEvalError as exc:
        return [str(exc)], summary
    problems: list[str] = []
    summary.update(task=task.name, model=model.name)
    try:
        samples = task.samples()
    except MioEvalError as exc:
        problems.append(f"data: {exc}")
        samples = []
    summary["samples"] = len(samples)
    loader = getattr(task, "loader", None)
    expected = getattr(loader, "expected_size", None)
    trimmed = getattr(loader, "max_samples", None) is not None
    if samples and expected is not None and not trimmed and len(samples) != expected:
        problems.append(f"data: {len(samples)} samples found, the official split has {expected}")
    missing = [p for s in samples for p in _media_paths(s) if not Path(p).exists()]
    if missing:
        shown = ", ".join(missing[:_SHOWN])
        problems.append(f"data: {len(missing)} media file(s) missing (e.g. {shown})")
    checkpoints = _checkpoint_paths(model, "model")
    for attr in ("judge", "speaker_encoder"):
        scorer = getattr(task, attr, None)
        if scorer is not None:
            checkpoints += _checkpoint_paths(scorer, f"task.{attr}")
    for label, path in checkpoints:
        if not Path(path).exists():
            problems.append(f"checkpoint: {label} not found: {path}")
    summary["checkpoints"] = [p for _, p in checkpoints]
    return problems, summary


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or {"-h", "--help"} & set(args):
        print(__doc__.strip())
        return 0
    problems, summary = validate(args)
    for problem in problems:
        print(f"mio-eval validate: {' '.join(problem.split())}", file=sys.stderr)
    if problems:
        return 2
    print(f"ok: task {summary['task']} ({summary['samples']} samples, media present), model {summary['model']}"
          + (f", checkpoints present: {', '.join(summary['checkpoints'])}" if summary["checkpoints"] else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
