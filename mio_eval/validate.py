"""``mio-eval validate task=... model=... [overrides]``: check a run before starting it.

Composes the config exactly as ``mio-eval`` would, builds the task and the model (no weights
are loaded), loads the data set (files present, format parsable), compares the sample count
with the split's known size, checks that sample ids are unique, that every media file a sample
references exists and that its header decodes (images: PIL ``Image.open`` + ``verify``; audio:
``soundfile.info``, else PyAV as the run's reader falls back to; video: PyAV finds a video
stream), and that the model's and the scorers' checkpoint paths exist. One line per problem on
stderr; exit 2 if there is any, 0 otherwise. Nothing is written.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, Sequence

from mio_eval.errors import MioEvalError
from mio_eval.samples import REFERENCE_KEYS, media_paths

__all__ = ["validate", "main"]

_SHOWN = 3


def _media(sample) -> dict[str, str]:
    """``{path: kind}`` (``image`` / ``audio`` / ``video``) of the files a sample makes the run read:
    the same files as :func:`mio_eval.samples.media_paths` (input parts, and reference files named
    in metadata), each with the kind its header is checked as."""
    kinds = {p.path: p.modality.value for p in sample.parts if getattr(p, "path", None)}
    kinds.update({str(sample.metadata[k]): k.rsplit("_", 1)[-1] for k in REFERENCE_KEYS
                  if isinstance(sample.metadata.get(k), str) and str(sample.metadata[k]) not in kinds})
    return {path: kinds.get(path, "file") for path in media_paths(sample)}


def _media_paths(sample) -> list[str]:
    return list(_media(sample))


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__


def media_problem(path: str, kind: str) -> str | None:
    """Why the run could not read this media file (a cheap header check), or None.

    A folder (a video given as its frames) is accepted as is."""
    target = Path(path)
    if target.is_dir():
        return None
    try:
        if target.stat().st_size == 0:
            return "empty file"
        if kind == "image":
            from PIL import Image as PILImage

            with PILImage.open(target) as image:
                image.verify()
        elif kind == "audio":
            import soundfile as sf

            try:
                sf.info(str(target))
            except Exception:  # noqa: BLE001 - libsndfile cannot open it: the run falls back to PyAV
                import av

                with av.open(str(target)) as container:
                    if not container.streams.audio:
                        return "no audio stream"
        elif kind == "video":
            import av

            with av.open(str(target)) as container:
                if not container.streams.video:
                    return "no video stream"
    except Exception as exc:  # noqa: BLE001 - PIL / libsndfile / av raise many types: all mean unreadable
        return _one_line(exc)
    return None


def _duplicates(samples) -> list[str]:
    seen: set[str] = set()
    dup: dict[str, None] = {}
    for s in samples:
        if s.id in seen:
            dup[s.id] = None
        seen.add(s.id)
    return list(dup)


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
    duplicates = _duplicates(samples)
    if duplicates:
        problems.append(f"data: {len(duplicates)} duplicate sample id(s) (e.g. {', '.join(duplicates[:_SHOWN])}); "
                        "the run would keep one prediction for each")
    media: dict[str, str] = {}
    for s in samples:
        for path, kind in _media(s).items():
            media.setdefault(path, kind)
    missing = [p for p in media if not Path(p).exists()]
    if missing:
        shown = ", ".join(missing[:_SHOWN])
        problems.append(f"data: {len(missing)} media file(s) missing (e.g. {shown})")
    from omegaconf import OmegaConf

    from mio_eval.api import data_roots
    from mio_eval.samples import outside_roots

    roots, allow_outside = data_roots(OmegaConf.to_container(cfg.task, resolve=True),
                                      OmegaConf.to_container(cfg.paths, resolve=True))
    outside = [] if allow_outside else outside_roots(list(media), roots)
    if outside:
        problems.append(f"data: {len(outside)} media path(s) outside the data root (e.g. {', '.join(outside[:_SHOWN])}); "
                        "the run refuses them unless paths.allow_outside_data=true")
    unreadable = [(p, why) for p, kind in media.items() if Path(p).exists() and (why := media_problem(p, kind))]
    if unreadable:
        shown = ", ".join(f"{p} ({why})" for p, why in unreadable[:_SHOWN])
        problems.append(f"data: {len(unreadable)} media file(s) unreadable (e.g. {shown})")
    summary["media"] = len(media)
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
