"""One ``predictions.jsonl`` line: written from (sample, request, output), read back for scoring.

A record holds the rendered prompt, the model's output with its media paths relative to the run
directory (so a run dir can move), the task's extracted prediction or the sample's error, the
seconds it took and the digest of the inputs it was made from (resume refuses changed inputs).
Read back, media paths must stay inside the run directory: a path leading elsewhere (a tampered
or replayed predictions file) fails that sample, never the run.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

from mio_eval.errors import MediaError
from mio_eval.tasks.base import Generated, InvalidOutput, Task
from mio_eval.types import Output, Request, Sample, part_to_json

__all__ = ["record", "absolute_media", "generated_from"]


def _relative_media(output: Output, run_dir: Path) -> dict[str, Any]:
    data = output.to_json()
    for part in data["media"]:
        path = Path(part["path"])
        if path.is_absolute() and path.is_relative_to(run_dir):
            part["path"] = str(path.relative_to(run_dir))
    return data


def absolute_media(data: Mapping[str, Any], run_dir: Path) -> Output:
    """The stored output with media paths made absolute. Media must lie inside the run dir (the
    runner stores them relative to it): a path leading elsewhere, as in a tampered or replayed
    predictions file, raises MediaError, which fails that sample."""
    output = Output.from_json(data)
    media = []
    for part in output.media:
        path = Path(part.path)
        full = (path if path.is_absolute() else run_dir / path).resolve()
        if not full.is_relative_to(run_dir):
            raise MediaError(f"media path outside the run directory: {part.path}")
        media.append(type(part)(**{**vars(part), "path": str(full)}))
    return Output(**{**vars(output), "media": tuple(media)})


def record(task: Task, sample: Sample, request: Request, output: Output, seconds: float, run_dir: Path,
           digest: str | None = None) -> dict:
    """The line for one finished sample. An output the task cannot read (``InvalidOutput``) or an
    extraction that raises becomes the sample's error, never a lost sample."""
    prediction, error = None, output.error
    if error is None:
        try:
            prediction = task.prediction(sample, output)
        except InvalidOutput as exc:
            error = f"invalid output: {exc}"
        except Exception as exc:  # noqa: BLE001 - an extraction bug must not lose the sample
            error = f"prediction failed: {type(exc).__name__}: {exc}"
    if isinstance(prediction, str) and output.media and error is None:
        path = Path(prediction)
        if path.is_absolute() and path.is_relative_to(run_dir):
            prediction = str(path.relative_to(run_dir))
    return {
        "id": sample.id,
        "prompt": [part_to_json(p) for p in request.parts],
        "output": _relative_media(output, run_dir),
        "prediction": prediction,
        "error": error,
        "time_s": round(seconds, 6),
        "input_digest": digest,
    }


def generated_from(sample: Sample, stored: Mapping[str, Any], run_dir: Path) -> Generated:
    """A stored record back as what scoring takes, media paths absolute; an unreadable record or a
    media path outside ``run_dir`` becomes the sample's error."""
    prediction, error = stored["prediction"], stored["error"]
    try:
        output = absolute_media(stored["output"], run_dir)
        if isinstance(prediction, str) and output.media:
            full = Path(prediction) if Path(prediction).is_absolute() else run_dir / prediction
            if not full.resolve().is_relative_to(run_dir):
                raise MediaError(f"media path outside the run directory: {prediction}")
            prediction = str(full)
    except (MediaError, KeyError, TypeError, ValueError) as exc:
        reason = str(exc) if isinstance(exc, MediaError) else f"unreadable stored output: {type(exc).__name__}: {exc}"
        output, prediction, error = Output.failure(reason), None, error or reason
    return Generated(sample=sample, output=output, prediction=prediction, error=error)
