"""The ``replay`` adapter: answers from predictions another tool wrote, so any task re-scores them
with mio-eval's scorers (``model=replay model.path=FILE_OR_DIR model.format=FORMAT``).

Formats and their on-disk layout are described in :mod:`mio_eval.models.replay_formats`. Each
record of the file gets a mio-eval sample id from ``id_template``, a ``str.format`` template over
the record (item access only, plus ``:stem``): ``{doc_id}``, ``{doc[subject]}/{doc_id:04d}``,
``{coco_CIDEr[image_id]}``, ``{image:stem}``. ``id_map`` (a JSON object ``{rendered id: sample
id}``, or a JSON list whose i-th item is the sample id of rendered id ``i``, as
:func:`write_id_map` writes from a task's sample order) translates further, for files that only
carry a position (lmms-eval >= 0.4 ``doc_id``).

Contract, per request:

* an id absent from the file is that sample's error (``replay: no prediction for 'X' in FILE``);
  an id present twice is an error too (ambiguous), never a silent pick;
* generation requests get the record's text, or its media (copied into the run's media folder);
* log-likelihood requests (``continuations``) get the file's ``[loglikelihood, is_greedy]``
  pairs, matched by continuation string when the file names them (lm-eval's ``arguments``), by
  position otherwise (count checked);
* a media path must resolve (symlinks followed) inside ``media_root`` (default: the prediction
  file's folder, or the media folder itself): anything else is refused as that sample's error.

The adapter never looks up task data (DESIGN: no back-references). Construction is cheap; the
file is read in ``load()``.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from collections import Counter
from pathlib import Path
from typing import Any, Mapping, Sequence

from mio_eval.errors import ConfigError
from mio_eval.media import output_path
from mio_eval.models.replay_formats import FORMATS, Answer, check_template, read_records, render_id
from mio_eval.types import Audio, Image, Modality, Output, Request, Sample, Video

__all__ = ["ReplayAdapter", "write_id_map"]

_MEDIA_PARTS = {"image": Image, "audio": Audio, "video": Video}
_TEXT_FORMATS = ("lmms_eval", "lm_eval", "vlmevalkit", "coco_captions", "evalai_vqa")


def write_id_map(samples: Sequence[Sample], path: str | Path) -> Path:
    """Write the JSON list of ``samples``' ids in order: with ``id_map`` it maps a position
    (lmms-eval's ``doc_id`` over the same dataset copy, in the same order) to our sample id."""
    path = Path(path)
    path.write_text(json.dumps([s.id for s in samples], ensure_ascii=False), encoding="utf-8")
    return path


def _sha256(paths: Sequence[Path]) -> str:
    digest = hashlib.sha256()
    for p in sorted(paths):
        if p.is_file():
            digest.update(p.name.encode())
            with open(p, "rb") as fh:
                for block in iter(lambda: fh.read(1 << 20), b""):
                    digest.update(block)
    return digest.hexdigest()


class ReplayAdapter:
    """Answers every request from a prediction file (see the module docstring)."""

    def __init__(self, *, path: str, format: str, name: str = "replay", id_template: str | None = None,  # noqa: A002
                 id_map: str | None = None, field: str | None = None, filter: str | None = None,  # noqa: A002
                 media_root: str | None = None, inputs: Sequence[str] = ("text", "image", "audio", "video"),
                 outputs: Sequence[str] | None = None) -> None:
        if format not in FORMATS:
            raise ConfigError(f"replay: unknown format {format!r}; one of: {', '.join(FORMATS)}")
        self.name = name
        self.path = str(path)
        self.format = format
        self.id_template = id_template or FORMATS[format][1]
        check_template(self.id_template)
        self.id_map = id_map
        self.field = field
        self.filter = filter
        self.media_root = media_root
        self.inputs = frozenset(Modality(m) for m in inputs)
        if outputs is None:
            outputs = (("text",) if format in _TEXT_FORMATS else ("image", "audio", "video") if format == "media_dir"
                       else ("text", "image", "audio", "video"))
        self.outputs = frozenset(Modality(m) for m in outputs)
        # Only the harness formats carry log-likelihoods (lm-eval / lmms-eval ``loglikelihood``).
        self.supports_loglikelihood = format in ("lmms_eval", "lm_eval")
        self._answers: dict[str, Answer] | None = None
        self._counts: Counter[str] = Counter()
        self._files: list[Path] = []

    # --- loading ---------------------------------------------------------------------------------

    def _root(self) -> Path:
        if self.media_root:
            return Path(self.media_root)
        path = Path(self.path)
        return path if path.is_dir() else path.parent

    def _load_id_map(self) -> Any:
        if not self.id_map:
            return None
        path = Path(self.id_map)
        try:
            mapping = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ConfigError(f"replay: id map unreadable: {path}: {' '.join(str(exc).split())}") from None
        if isinstance(mapping, list):
            return {str(i): str(v) for i, v in enumerate(mapping)}
        if isinstance(mapping, dict):
            return {str(k): str(v) for k, v in mapping.items()}
        raise ConfigError(f"replay: id map {path} must be a JSON list or object")

    def load(self) -> None:
        if self._answers is not None:
            return
        path = Path(self.path)
        if not path.exists():
            raise ConfigError(f"replay: prediction file not found: {path}")
        id_map = self._load_id_map()
        answers: dict[str, Answer] = {}
        counts: Counter[str] = Counter()
        for record, answer in read_records(self.format, path, field_name=self.field, filter_name=self.filter):
            try:
                key = render_id(self.id_template, record)
            except (KeyError, IndexError, ValueError, TypeError) as exc:
                raise ConfigError(f"replay: {answer.source}: id template {self.id_template!r} does not fit the "
                                  f"record ({type(exc).__name__}: {exc}; record fields: {', '.join(sorted(record))})") from None
            if id_map is not None:
                key = id_map.get(key, f"<unmapped {key}>")
            counts[key] += 1
            answers.setdefault(key, answer)
        self._answers, self._counts = answers, counts
        self._files = [path] if path.is_file() else sorted(
            p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in (".jsonl", ".json", ".xlsx", ".tsv", ".csv"))

    # --- answering -------------------------------------------------------------------------------

    def _media(self, answer: Answer, request: Request, media_dir: Path) -> Output:
        root = self._root().resolve()
        parts = []
        for k, (kind, written) in enumerate(answer.media):
            source = Path(written)
            source = source if source.is_absolute() else self._root() / source
            resolved = source.resolve()
            if not resolved.is_relative_to(root):
                return Output.failure(f"replay: {written} resolves outside the media root {root}: refused")
            if not resolved.is_file():
                return Output.failure(f"replay: media file missing: {source}")
            dst = output_path(media_dir, request.sample_id, ("" if k == 0 else f"-{k}") + resolved.suffix.lower())
            dst.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(resolved, dst)
            parts.append(_MEDIA_PARTS[kind](str(dst)))
        return Output(text=answer.text, media=tuple(parts))

    def _loglikelihood(self, answer: Answer, request: Request) -> Output:
        if not answer.loglikelihoods:
            return Output.failure(f"replay: {answer.source} holds a generation, the task asks for log-likelihoods "
                                  f"(replay a loglikelihood run, or use the task's generation scoring)")
        pairs = answer.loglikelihoods
        if answer.continuations:
            index = {c: i for i, c in enumerate(answer.continuations)}
            missing = [c for c in request.continuations if c not in index]
            if missing:
                return Output.failure(f"replay: {answer.source}: continuation(s) {missing!r} not in the file's "
                                      f"{list(answer.continuations)!r}")
            pairs = tuple(pairs[index[c]] for c in request.continuations)
        elif len(pairs) != len(request.continuations):
            return Output.failure(f"replay: {answer.source} holds {len(pairs)} log-likelihoods, the request has "
                                  f"{len(request.continuations)} continuations")
        return Output(logprobs=tuple(p[0] for p in pairs), greedy=tuple(p[1] for p in pairs))

    def _answer(self, request: Request, media_dir: Path) -> Output:
        answer = self._answers.get(request.sample_id)
        if answer is None:
            return Output.failure(f"replay: no prediction for {request.sample_id!r} in {self.path}")
        if self._counts[request.sample_id] > 1:
            return Output.failure(f"replay: {self._counts[request.sample_id]} predictions for {request.sample_id!r} "
                                  f"in {self.path} (ambiguous; fix model.id_template)")
        if request.continuations:
            return self._loglikelihood(answer, request)
        if answer.loglikelihoods:
            return Output.failure(f"replay: {answer.source} holds log-likelihoods, the task asks for a generation "
                                  f"(use the task's likelihood scoring)")
        if answer.media:
            return self._media(answer, request, media_dir)
        if answer.text is None:
            return Output.failure(f"replay: {answer.source} holds no text")
        return Output(text=answer.text)

    def generate(self, requests: Sequence[Request], *, media_dir: Path) -> list[Output]:
        self.load()
        return [self._answer(r, Path(media_dir)) for r in requests]

    def provenance(self) -> Mapping[str, Any]:
        self.load()
        return {"model": "replay", "format": self.format, "path": self.path, "id_template": self.id_template,
                "id_map": self.id_map, "field": self.field, "filter": self.filter,
                "n_predictions": sum(self._counts.values()),
                "sha256": _sha256(self._files) if self.format != "media_dir" else None}
