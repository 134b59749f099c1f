"""Text-to-image baselines: a diffusers Stable Diffusion pipeline from a local folder.

``StableDiffusionPipeline.from_pretrained(path)`` on a ``save_pretrained`` folder (``model_index.json``,
``unet/``, ``vae/``, ``text_encoder/``, ``tokenizer/``, ``scheduler/``; the safety checker may be
absent). Text in (the request's text parts joined), one PNG out per request.

Batched: the requests of a batch that share their settings go through one pipeline call. Seeded
per request: each prompt gets its own ``torch.Generator`` seeded from the request's
``generation.seed`` (default 0) and, with ``seed_policy="per_sample"`` (default), a stable hash of
the sample id (``seed + crc32(id)``), so an image depends only on its prompt, id and seed, never
on batch size or order; ``"fixed"`` uses the seed unchanged for every prompt (same initial noise).

Generation keys read from the request (model defaults otherwise): ``seed``,
``num_inference_steps``, ``guidance_scale``, ``height``, ``width``, ``negative_prompt``. Images are
written as ``<media_dir>/<sha256 of the PNG, 16 hex>.png`` (content-addressed).
"""

from __future__ import annotations

import hashlib
import io
import zlib
from pathlib import Path
from typing import Any, Mapping, Sequence

from mio_eval.atomic import atomic_path
from mio_eval.errors import ConfigError
from mio_eval.types import Image, Modality, Output, Request

__all__ = ["DiffusersT2I", "request_seed"]

_KEYS = ("num_inference_steps", "guidance_scale", "height", "width", "negative_prompt")


def request_seed(request: Request, policy: str = "per_sample") -> int:
    """The generator seed of one request (see module doc)."""
    base = int(request.generation.get("seed") or 0)
    if policy == "fixed":
        return base
    return (base + zlib.crc32(request.sample_id.encode("utf-8"))) % (2**32)


class DiffusersT2I:
    def __init__(self, *, path: str, name: str = "diffusers_t2i", device: str = "cpu", dtype: str = "float32",
                 num_inference_steps: int = 50, guidance_scale: float = 7.5, height: int | None = None,
                 width: int | None = None, seed_policy: str = "per_sample", scheduler: str | None = None) -> None:
        if seed_policy not in ("per_sample", "fixed"):
            raise ConfigError(f"seed_policy must be per_sample or fixed, got {seed_policy!r}")
        if dtype not in ("float32", "float16", "bfloat16"):
            raise ConfigError(f"dtype must be float32, float16 or bfloat16, got {dtype!r}")
        self.name = name
        self.path = str(path)
        self.device = device
        self.dtype = dtype
        self.defaults = {"num_inference_steps": int(num_inference_steps), "guidance_scale": float(guidance_scale),
                         "height": height, "width": width, "negative_prompt": None}
        self.seed_policy = seed_policy
        self.scheduler = scheduler
        self.inputs = frozenset({Modality.TEXT})
        self.outputs = frozenset({Modality.IMAGE})
        self.pipe = None

    def load(self) -> None:
        if self.pipe is not None:
            return
        if not (Path(self.path) / "model_index.json").is_file():
            raise ConfigError(f"no diffusers pipeline at {self.path} (model_index.json missing): save one with "
                              "StableDiffusionPipeline.save_pretrained")
        try:
            import torch
            from diffusers import StableDiffusionPipeline
        except ImportError:
            raise ConfigError("diffusers is not installed: pip install diffusers") from None
        pipe = StableDiffusionPipeline.from_pretrained(self.path, torch_dtype=getattr(torch, self.dtype),
                                                       safety_checker=None, requires_safety_checker=False)
        if self.scheduler:
            import diffusers

            cls = getattr(diffusers, self.scheduler, None)
            if cls is None:
                raise ConfigError(f"unknown diffusers scheduler {self.scheduler!r}")
            pipe.scheduler = cls.from_config(pipe.scheduler.config)
        pipe.set_progress_bar_config(disable=True)
        self.pipe = pipe.to(self.device)

    def _settings(self, request: Request) -> tuple:
        gen = request.generation
        return tuple((k, gen.get(k, self.defaults[k])) for k in _KEYS)

    def generate(self, requests: Sequence[Request], *, media_dir: Path) -> list[Output]:
        import torch

        self.load()
        outputs: list[Output | None] = [None] * len(requests)
        groups: dict[tuple, list[int]] = {}
        for i, request in enumerate(requests):
            if not request.text.strip():
                outputs[i] = Output.failure("diffusers_t2i: empty prompt")
                continue
            groups.setdefault(self._settings(request), []).append(i)
        media_dir = Path(media_dir)
        media_dir.mkdir(parents=True, exist_ok=True)
        for settings, indices in groups.items():
            kwargs = {k: v for k, v in settings if v is not None}
            generators = [torch.Generator(device="cpu").manual_seed(request_seed(requests[i], self.seed_policy))
                          for i in indices]
            with torch.inference_mode():
                images = self.pipe(prompt=[requests[i].text for i in indices], generator=generators,
                                   output_type="pil", **kwargs).images
            for i, image in zip(indices, images):
                buf = io.BytesIO()
                image.convert("RGB").save(buf, format="PNG")
                data = buf.getvalue()
                target = media_dir / f"{hashlib.sha256(data).hexdigest()[:16]}.png"
                with atomic_path(target) as tmp:
                    tmp.write_bytes(data)
                outputs[i] = Output(media=(Image(str(target)),))
        return outputs  # type: ignore[return-value]

    def provenance(self) -> Mapping[str, Any]:
        info: dict[str, Any] = {"model": "diffusers StableDiffusionPipeline", "path": self.path, "dtype": self.dtype,
                                "defaults": dict(self.defaults), "seed_policy": self.seed_policy}
        if self.pipe is not None:
            import diffusers

            info.update(diffusers=diffusers.__version__, scheduler=type(self.pipe.scheduler).__name__,
                        name_or_path=self.pipe.config.get("_name_or_path"))
        return info
