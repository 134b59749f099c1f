"""Text-to-video: caption -> frames -> an mp4 under the run dir; per-frame CLIP-T.

MIO writes a video as a sequence of images (one ``<image>`` block per frame, ``Request.kind =
"video_gen"``), so by default the task asks for image output (``output: frames``) and assembles the
frames, in order, into ``media/videos/<sha256 of the frames, 16 hex>.mp4`` with PyAV
(:func:`write_mp4`: H.264 ``yuv420p`` at ``fps``, frames resized to the first frame's size and
padded to even dimensions). An adapter that writes a video file itself is asked with ``output:
video``; its file is used as is and ``num_frames`` frames are sampled uniformly from it.

There is no standard benchmark in the MIO paper ("Due to the lack of video generation benchmarks in
our setting, we provide examples"); the scores here are descriptive, labelled:

* ``clip_t`` — per-frame CLIP-T (``100 * cos(frame, caption)``, unclamped, as MME-Unify logs it
  for its video subtasks), averaged over the frames of a video, then over videos;
  ``clip_t_clamped`` the same with ``max(., 0)`` per frame (torchmetrics style);
* ``frame_consistency`` — mean CLIP-I cosine of consecutive frames (x100), a temporal-coherence
  proxy (100 for a still video; needs two frames).
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any, Callable, ClassVar, Mapping, Sequence

import numpy as np

from mio_eval.atomic import atomic_path
from mio_eval.errors import ConfigError, MediaError
from mio_eval.metrics.base import MetricResult
from mio_eval.tasks.base import Generated, InvalidOutput, ScoreReport, TaskBase
from mio_eval.types import Image, Modality, Output, Request, Sample, Text, Video

__all__ = ["VideoGenerationTask", "write_mp4"]


def write_mp4(frames: Sequence[Any], path: str | Path, *, fps: int = 8, codec: str = "libx264") -> Path:
    """Write RGB PIL frames as an mp4 (atomically). All frames take the first frame's size; odd
    dimensions are padded by one black row / column (yuv420p needs even sizes)."""
    import av
    from PIL import Image as PILImage

    if not frames:
        raise MediaError("no frames to write")
    first = frames[0].convert("RGB")
    w, h = first.size
    even = (w + w % 2, h + h % 2)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        with av.open(str(tmp), mode="w", format="mp4") as container:
            stream = container.add_stream(codec, rate=int(fps))
            stream.width, stream.height, stream.pix_fmt = even[0], even[1], "yuv420p"
            for frame in frames:
                frame = frame.convert("RGB")
                if frame.size != (w, h):
                    frame = frame.resize((w, h), PILImage.BILINEAR)
                if even != (w, h):
                    canvas = PILImage.new("RGB", even)
                    canvas.paste(frame, (0, 0))
                    frame = canvas
                for packet in stream.encode(av.VideoFrame.from_image(frame)):
                    container.mux(packet)
            for packet in stream.encode():
                container.mux(packet)
    return path


class VideoGenerationTask(TaskBase):
    """Caption -> video (frames); per-frame CLIP-T and frame consistency."""

    input_modalities = frozenset({Modality.TEXT})
    scoring_keys: ClassVar[tuple[str, ...]] = ("clip", "num_frames")

    def __init__(self, *, name: str, loader: Callable[[], list[Sample]], prompt: str = "{caption}",
                 generation: Mapping[str, Any] | None = None, output: str = "frames", fps: int = 8,
                 num_frames: int = 16, clip=None) -> None:
        if output not in ("frames", "video"):
            raise ConfigError(f"task {name}: output must be frames or video, got {output!r}")
        self._task(name=name, loader=loader, prompt=prompt, generation=generation, placeholders=("caption",))
        self.output = output
        self.output_modality = Modality.IMAGE if output == "frames" else Modality.VIDEO
        self.fps = int(fps)
        self.num_frames = int(num_frames)
        self.clip = clip

    def preflight(self) -> None:
        if self.clip is None:
            raise ConfigError(f"task {self.name}: task.clip is required to score")
        self.clip.load()

    def request(self, sample: Sample) -> Request:
        text = self.prompt.replace("{caption}", sample.metadata["caption"])
        return Request(sample_id=sample.id, parts=(Text(text),), output_modality=self.output_modality,
                       generation=self.generation, kind="video_gen")

    def prediction(self, sample: Sample, output: Output) -> str:
        from mio_eval.media import load_image

        videos = [p for p in output.media if isinstance(p, Video)]
        if self.output == "video":
            if not videos:
                raise InvalidOutput("expected a video, got " + (", ".join(sorted(m.value for m in output.modalities()))
                                                                or "nothing"))
            return videos[0].path
        frames = [p.path for p in output.media if isinstance(p, Image)]
        if not frames:
            raise InvalidOutput("expected generated frames (images), got " + (
                ", ".join(sorted(m.value for m in output.modalities())) or "nothing"))
        try:
            pictures = [load_image(f) for f in frames]
        except MediaError as exc:
            raise InvalidOutput(f"generated frame unreadable: {exc}") from None
        digest = hashlib.sha256()
        for picture in pictures:
            digest.update(f"{picture.size}".encode())
            digest.update(picture.tobytes())
        target = Path(frames[0]).parent / "videos" / f"{digest.hexdigest()[:16]}.mp4"
        if not target.is_file():
            write_mp4(pictures, target, fps=self.fps)
        return str(target)

    def _frames(self, g: Generated) -> list:
        from mio_eval.media import load_image, video_frames

        images = [p.path for p in g.output.media if isinstance(p, Image)]
        if images:  # the generated frames themselves (the mp4 is a lossy copy)
            return [load_image(p) for p in images]
        return video_frames(g.prediction, self.num_frames)

    def score(self, generated: Sequence[Generated], *, work_dir: Path) -> ScoreReport:
        from mio_eval.metrics.clip_score import cosine_rows

        if self.clip is None:
            raise ConfigError(f"task {self.name}: task.clip is required to score")
        rows: list[dict[str, Any]] = []
        clip_t, clip_t_clamped, consistency = [], [], []
        for g in generated:
            row: dict[str, Any] = {"id": g.sample.id, "error": g.error, "caption": g.sample.metadata["caption"],
                                   "video": g.prediction}
            rows.append(row)
            if g.error is not None:
                row["stage"] = "generate"
                continue
            try:
                frames = self._frames(g)
            except MediaError as exc:
                row.update(error=f"score: {exc}", stage="score")
                continue
            feats = self.clip.encode_images(frames)
            text = self.clip.encode_texts([row["caption"]])
            cos = cosine_rows(feats, np.repeat(text, len(frames), axis=0))
            row.update(n_frames=len(frames), clip_t=100.0 * float(np.mean(cos)),
                       clip_t_frames=[100.0 * float(c) for c in cos])
            clip_t.append(float(np.mean(cos)))
            clip_t_clamped.append(float(np.mean(np.maximum(cos, 0.0))))
            if len(frames) > 1:
                pair = cosine_rows(feats[:-1], feats[1:])
                row["frame_consistency"] = 100.0 * float(np.mean(pair))
                consistency.append(float(np.mean(pair)))
        model = self.clip.model_id

        def result(name, values, variant, provenance):
            return MetricResult(name=name, value=float(np.mean(values)) if values else None, higher_is_better=True,
                                variant=variant, provenance=provenance, scale=100.0, n=len(values),
                                extra={"model": model})

        metrics = (
            result("clip_t", clip_t, "per_frame_mme_unify", "mean over frames of 100*cos(frame, caption), unclamped; "
                   "mean over videos"),
            result("clip_t_clamped", clip_t_clamped, "per_frame_torchmetrics",
                   "mean over frames of max(100*cos(frame, caption), 0); mean over videos"),
            result("frame_consistency", consistency, "consecutive_clip_i",
                   "mean CLIP-I cosine of consecutive frames (descriptive; no published reference)"),
        )
        settings = {"output": self.output, "fps": self.fps, "num_frames": self.num_frames, "prompt": self.prompt,
                    "video_writer": "PyAV libx264 yuv420p", "clip_model": model}
        judge = {"model": self.clip.model_id, **dict(self.clip.provenance())}
        return ScoreReport(metrics=metrics, per_sample=tuple(rows), judges=(judge,),
                           settings=settings)
