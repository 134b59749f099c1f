"""Captions to generate videos from: MSR-VTT's ``{train_val,test}_videodatainfo.json`` or a plain
JSON / JSONL prompt list.

MSR-VTT file (Xu et al. 2016): ``{"videos": [{"video_id": "video7010", "split": "test", ...}],
"sentences": [{"caption", "video_id", "sen_id"}]}``; one sample per video of ``split`` (file
order), the prompt = its first caption in file order (``caption_index`` picks another), all its
captions kept in ``metadata["captions"]``; the reference clip ``<video_dir>/<video_id>.mp4`` is
recorded when ``video_dir`` is given (not needed to score: video generation is scored by per-frame
CLIP-T against the prompt).

Prompt list: a JSON list or JSONL lines of ``{"id", "caption"}`` (``"prompt"`` / ``"text"`` also
accepted).
"""

from __future__ import annotations

from pathlib import Path

from mio_eval.errors import ConfigError
from mio_eval.jsonl import read_jsonl
from mio_eval.tasks.loaders._data import data_not_found
from mio_eval.tasks.loaders._images import read_json
from mio_eval.types import Sample, Text

__all__ = ["VideoCaptionLoader"]


class VideoCaptionLoader:
    def __init__(self, *, annotations: str, split: str = "test", caption_index: int = 0, video_dir: str | None = None,
                 max_samples: int | None = None) -> None:
        self.annotations = Path(annotations)
        self.split = split
        self.caption_index = int(caption_index)
        self.video_dir = Path(video_dir) if video_dir else None
        self.max_samples = max_samples

    def _prompt_list(self) -> list[dict]:
        if self.annotations.suffix == ".jsonl":
            if not self.annotations.is_file():
                raise data_not_found("prompt list", self.annotations, key="annotations")
            items = [item for _, item in read_jsonl(self.annotations, what="prompt list")]
        else:
            items = read_json(self.annotations, "prompt list")
        rows = []
        for n, item in enumerate(items):
            text = item.get("caption") or item.get("prompt") or item.get("text") if isinstance(item, dict) else None
            if not isinstance(text, str) or not text.strip():
                raise ConfigError(f"{self.annotations} item #{n}: no caption")
            rows.append({"id": str(item.get("id", n)), "captions": [text], "video": None})
        return rows

    def _msrvtt(self, data: dict) -> list[dict]:
        captions: dict[str, list[str]] = {}
        for sentence in data.get("sentences", []):
            captions.setdefault(str(sentence["video_id"]), []).append(str(sentence["caption"]))
        rows = []
        for video in data["videos"]:
            if video.get("split") != self.split:
                continue
            vid = str(video["video_id"])
            if not captions.get(vid):
                raise ConfigError(f"{self.annotations}: {vid} has no caption")
            rows.append({"id": vid, "captions": captions[vid],
                         "video": str(self.video_dir / f"{vid}.mp4") if self.video_dir else None})
        return rows

    def __call__(self) -> list[Sample]:
        if self.annotations.suffix == ".json":
            data = read_json(self.annotations, "video caption file")
            rows = self._msrvtt(data) if isinstance(data, dict) and "videos" in data else None
        else:
            rows = None
        if rows is None:
            rows = self._prompt_list()
        if not rows:
            raise ConfigError(f"no videos of split {self.split!r} in {self.annotations}")
        if self.max_samples is not None:
            rows = rows[: self.max_samples]
        samples = []
        for row in rows:
            k = min(self.caption_index, len(row["captions"]) - 1)
            caption = " ".join(row["captions"][k].split())
            meta = {"caption": caption, "caption_index": k, "n_captions": len(row["captions"])}
            if row["video"]:
                meta["reference_video"] = row["video"]
            samples.append(Sample(id=row["id"], parts=(Text(caption),), targets=(caption,), metadata=meta))
        return samples
