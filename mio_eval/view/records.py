"""One sample as the viewer shows it: its inputs and outputs as texts and media, its scores, and
the word-level alignment of a transcript with its reference.

A display record is a plain JSON object::

    {"id": ..., "error": str | null, "value": float | null,          # the headline per-sample value
     "scores": {name: number}, "texts": [[label, text], ...],
     "media": [[label, "audio" | "image" | "video", href], ...],
     "align": [[op, ref words, hyp words], ...] | null}              # op: e / s / d / i

Media paths are resolved against the run directory (relative paths, as the runner writes them) or
taken as they are (absolute dataset paths); ``link(path)`` turns a resolved file into the href the
page uses (relative to the site, or a copy made by ``--copy-media``), so no machine path reaches
the HTML.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Mapping

from mio_eval.results import sample_value

__all__ = ["MEDIA_KINDS", "media_kind", "alignment", "display_record", "search_text"]

MEDIA_KINDS = {
    **{ext: "audio" for ext in (".wav", ".flac", ".mp3", ".ogg", ".opus", ".m4a")},
    **{ext: "image" for ext in (".png", ".jpg", ".jpeg", ".gif", ".webp", ".bmp")},
    **{ext: "video" for ext in (".mp4", ".webm", ".avi", ".mkv", ".mov")},
}
MAX_TEXT = 2000  # characters of one text shown (a 5-shot MMLU prompt is longer); the rest is cut, marked
_SKIP_TEXT = {"id", "error"}


def media_kind(value: Any) -> str | None:
    if not isinstance(value, str) or len(value) > 4096:
        return None
    dot = value.rfind(".")  # str methods, not pathlib: this runs on every string of 200k rows
    if dot < 0 or len(value) - dot > 6:
        return None
    kind = MEDIA_KINDS.get(value[dot:].lower())
    return kind if kind and "\n" not in value else None


def alignment(reference: str, hypothesis: str) -> list[list[str]] | None:
    """Word alignment by jiwer (``process_words``: Levenshtein over words) as
    ``[op, reference words, hypothesis words]`` runs with op ``e`` equal, ``s`` substitute,
    ``d`` delete, ``i`` insert. None when either side is empty (nothing to align)."""
    import jiwer

    if not reference.split() or not hypothesis.split():
        return None
    out = jiwer.process_words(reference, hypothesis)
    ref, hyp = out.references[0], out.hypotheses[0]
    ops = {"equal": "e", "substitute": "s", "delete": "d", "insert": "i"}
    runs = []
    for c in out.alignments[0]:
        r, h = ref[c.ref_start_idx:c.ref_end_idx], hyp[c.hyp_start_idx:c.hyp_end_idx]
        if c.type == "substitute":  # jiwer groups neighbouring substitutions: one pair per word
            runs += [["s", a, b] for a, b in zip(r, h)]
        else:
            runs.append([ops[c.type], " ".join(r), " ".join(h)])
    return runs


def _text(value: Any) -> str | None:
    if isinstance(value, str):
        text = value
    elif isinstance(value, list) and value and all(isinstance(v, (str, int, float)) for v in value):
        text = " | ".join(str(v) for v in value)
    else:
        return None
    return text if len(text) <= MAX_TEXT else text[:MAX_TEXT] + f" … [{len(text) - MAX_TEXT} more characters]"


def _resolve(path: str, run_dir: Path) -> Path:
    candidate = Path(path)
    return candidate if candidate.is_absolute() else run_dir / candidate


def display_record(*, sample_id: str, prediction: Mapping[str, Any] | None, score: Mapping[str, Any] | None,
                   metric: str | None, metric_entry: Mapping[str, Any] | None, run_dir: Path,
                   link: Callable[[Path], str | None]) -> dict[str, Any]:
    """The display record of one sample from its ``predictions.jsonl`` and ``scores.jsonl`` rows."""
    prediction = prediction or {}
    score = score or {}
    texts: list[list[str]] = []
    media: list[list[str]] = []
    seen: set[str] = set()

    def add_media(label: str, path: str) -> None:
        resolved = _resolve(path, run_dir)
        key = str(resolved)
        if key in seen:
            return
        seen.add(key)
        href = link(resolved)
        if href is not None:
            media.append([label, media_kind(path) or "image", href])
        else:
            texts.append([label, f"(missing file: {Path(path).name})"])

    for part in prediction.get("prompt") or []:
        if part.get("type") == "text" and part.get("text"):
            texts.append(["prompt", _text(part["text"]) or ""])
        elif part.get("path"):
            add_media(f"input {part.get('type', '')}".strip(), part["path"])
    output = prediction.get("output") or {}
    # The scored file is the prediction (e.g. t2i's PNG copy of the model's raw image); the raw
    # output of the same kind is then the same picture and is not shown twice.
    scored = prediction.get("prediction")
    scored_kind = media_kind(scored)
    if scored_kind:
        add_media(f"generated {scored_kind}", scored)
    for item in output.get("media") or []:
        if item.get("path") and media_kind(item["path"]) != scored_kind:
            add_media(f"generated {item.get('type', '')}".strip(), item["path"])
    if isinstance(output.get("text"), str):
        texts.append(["output", _text(output["text"]) or ""])
    scores: dict[str, float] = {}
    for key, value in score.items():
        if key in _SKIP_TEXT:
            continue
        if isinstance(value, bool):
            scores[key] = float(value)
        elif isinstance(value, (int, float)):
            if value == value:
                scores[key] = value
        elif media_kind(value):
            add_media(key, value)
        else:
            text = _text(value)
            if text is not None and not key.endswith("_normalized"):
                texts.append([key, text])
    if isinstance(prediction.get("prediction"), str) and not media_kind(prediction["prediction"]) \
            and "prediction" not in score and prediction["prediction"] != output.get("text"):
        texts.append(["prediction", _text(prediction["prediction"]) or ""])
    align = None
    ref = score.get("reference_normalized")
    hyp_key = next((k for k in score if k.endswith("_normalized") and k != "reference_normalized"), None)
    if isinstance(ref, str) and hyp_key and isinstance(score.get(hyp_key), str):
        align = alignment(ref, score[hyp_key])
    error = score.get("error") or prediction.get("error")
    value = sample_value(score, metric, metric_entry) if metric and score else None
    return {"id": sample_id, "error": error, "value": value, "scores": scores, "texts": texts, "media": media,
            "align": align}


def search_text(record: Mapping[str, Any], *, limit: int = 160) -> str:
    """Lower-cased text the index keeps for the text search: the id and the start of each text."""
    parts = [str(record["id"])] + [t[1][:limit] for t in record["texts"]]
    if record.get("error"):
        parts.append(str(record["error"])[:limit])
    return " ".join(parts).lower()
