"""An adapter that answers from an answer key: the model that is always right. For tests, demos
and checking that a task's scoring gives its maximum (an oracle returning the ground-truth image
must score CLIP-I 100 and SSIM 1.0).

The adapter never looks up task data (DESIGN: no back-references): it reads a JSON answer key,
``{sample_id: {"text": str, "image": path | [paths], "video": path, "audio": path}}``, written
from a task's samples beforehand (:func:`answer_key`, or by hand). Media are copied into the run's
media directory, so predictions point inside the run dir as a real model's do. A request whose id
is not in the key fails (per-sample error).

``read_inputs=True`` makes it read every input part the way a model would (images decoded,
videos' first frame decoded, audio read), so unreadable inputs become per-sample errors.

Only files inside ``media_roots`` (default: the answer key's folder and ``paths.data_dir``) are
copied, after resolving links: a key naming ``/etc/shadow`` or ``../../etc/passwd`` fails that
sample instead of copying the file into the results.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any, Mapping, Sequence

from mio_eval.errors import ConfigError, MediaError
from mio_eval.media import output_path
from mio_eval.types import Audio, Image, Modality, Output, Request, Sample, Video

__all__ = ["OracleAdapter", "answer_key"]

_MEDIA = {"image": Image, "video": Video, "audio": Audio}
_SUFFIXES = {".png": "image", ".jpg": "image", ".jpeg": "image", ".webp": "image", ".bmp": "image", ".gif": "image",
             ".mp4": "video", ".avi": "video", ".webm": "video", ".mkv": "video", ".mov": "video",
             ".wav": "audio", ".flac": "audio", ".mp3": "audio", ".ogg": "audio"}


def answer_key(samples: Sequence[Sample], path: str | Path) -> Path:
    """Write the answer key of ``samples``: targets that are media files become media (all of
    them: several images for a multi-image target), otherwise the first target is the text."""
    key: dict[str, dict[str, Any]] = {}
    for s in samples:
        entry: dict[str, Any] = {}
        for target in s.targets:
            kind = _SUFFIXES.get(Path(str(target)).suffix.lower())
            if kind is None:
                continue
            if kind == "image":
                entry.setdefault("image", []).append(str(target))
            else:
                entry.setdefault(kind, str(target))
        if not entry and s.targets:
            entry["text"] = str(s.targets[0])
        key[s.id] = entry
    path = Path(path)
    path.write_text(json.dumps(key, ensure_ascii=False, indent=1), encoding="utf-8")
    return path


class OracleAdapter:
    def __init__(self, *, answers_path: str, name: str = "oracle", read_inputs: bool = False,
                 inputs: Sequence[str] = ("text", "image", "audio", "video"),
                 outputs: Sequence[str] = ("text", "image", "audio", "video"),
                 media_roots: Sequence[str] = ()) -> None:
        self.name = name
        self.answers_path = str(answers_path)
        self.media_roots = [str(r) for r in media_roots if r]
        self.read_inputs = bool(read_inputs)
        self.inputs = frozenset(Modality(m) for m in inputs)
        self.outputs = frozenset(Modality(m) for m in outputs)
        self._key: dict[str, Any] | None = None

    def load(self) -> None:
        if self._key is not None:
            return
        path = Path(self.answers_path)
        try:
            self._key = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ConfigError(f"oracle answer key unreadable: {path}: {' '.join(str(exc).split())}") from None
        if not isinstance(self._key, dict):
            raise ConfigError(f"oracle answer key {path} must be a JSON object of sample id -> answer")

    def _check_inputs(self, request: Request) -> None:
        from mio_eval.media import load_audio, load_image, video_frames

        for part in request.parts:
            if isinstance(part, Image):
                load_image(part.path)
            elif isinstance(part, Video):
                video_frames(part.path, 1)
            elif isinstance(part, Audio):
                load_audio(part.path)

    def _answer(self, request: Request, media_dir: Path) -> Output:
        entry = self._key.get(request.sample_id)
        if entry is None:
            return Output.failure(f"oracle: no answer for {request.sample_id!r}")
        if self.read_inputs:
            try:
                self._check_inputs(request)
            except MediaError as exc:
                return Output.failure(str(exc))
        media = []
        for kind, cls in _MEDIA.items():
            sources = entry.get(kind) or []
            for k, src in enumerate([sources] if isinstance(sources, str) else sources):
                src = Path(self.answers_path).parent / src if not Path(src).is_absolute() else Path(src)
                roots = [Path(self.answers_path).resolve().parent, *(Path(r).resolve() for r in self.media_roots)]
                if not any(src.resolve().is_relative_to(root) for root in roots):
                    return Output.failure(f"oracle: answer file outside the answer key's folder and media_roots: {src}")
                if not src.is_file():
                    return Output.failure(f"oracle: answer file missing: {src}")
                suffix = ("" if k == 0 else f"-{k}") + src.suffix.lower()
                dst = output_path(media_dir, request.sample_id, suffix)
                dst.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(src, dst)
                media.append(cls(str(dst)))
        return Output(text=entry.get("text"), media=tuple(media))

    def generate(self, requests: Sequence[Request], *, media_dir: Path) -> list[Output]:
        self.load()
        return [self._answer(r, Path(media_dir)) for r in requests]

    def provenance(self) -> Mapping[str, Any]:
        return {"model": "oracle", "answers_path": self.answers_path, "read_inputs": self.read_inputs}
