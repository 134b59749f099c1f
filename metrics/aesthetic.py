"""Aesthetic Predictor V2.5 (MIO Table 13): a SigLIP vision tower and a small scoring head.

Reproduces ``discus0434/aesthetic-predictor-v2-5`` @ c0e1556 (``src/aesthetic_predictor_v2_5/
siglip_v2_5.py``; PyPI ``aesthetic-predictor-v2-5`` 2024.12.18.1) without the package and without
network access (the package downloads its head from GitHub when the file is absent):

* encoder: transformers ``SiglipVisionModel`` from a local folder (``google/siglip-so400m-patch14-384``
  saved with ``save_pretrained``; a full ``SiglipModel`` folder loads its vision tower), images
  prepared by that folder's ``SiglipImageProcessor`` (384x384 for so400m);
* score: ``pooler_output`` L2-normalised, then the head ``Linear(hidden, 1024) -> Linear(1024, 128)
  -> Linear(128, 64) -> Linear(64, 16) -> Linear(16, 1)`` with Dropout between (no activations; in
  eval mode an affine map), loaded from the released ``aesthetic_predictor_v2_5.pth`` (state-dict
  keys ``scoring_head.{0,2,4,6,8}.{weight,bias}``).

The reference README runs bfloat16 on CUDA; we pin float32 by default (``dtype``) because bf16
moves scores in the second decimal. Aggregate: the mean over images (assumed; ~1-10, 5.5+ is
"great" per the README).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from mio_eval.errors import ConfigError
from mio_eval.metrics.base import MetricResult

__all__ = ["AestheticPredictor", "build_head", "HEAD_WIDTHS"]

HEAD_WIDTHS = (1024, 128, 64, 16, 1)
_DROPOUT = (0.5, 0.5, 0.5, 0.2)


def build_head(hidden_size: int):
    """The V2.5 scoring head as an ``nn.Module`` whose state-dict keys match the released file."""
    import torch.nn as nn

    layers: list[nn.Module] = []
    width = int(hidden_size)
    for i, out in enumerate(HEAD_WIDTHS):
        layers.append(nn.Linear(width, out))
        if i < len(_DROPOUT):
            layers.append(nn.Dropout(_DROPOUT[i]))
        width = out

    class Head(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.scoring_head = nn.Sequential(*layers)

        def forward(self, embeds):
            return self.scoring_head(embeds)

    return Head()


class AestheticPredictor:
    """Per-image aesthetic scores. Construction is cheap; weights load on first use.

    ``encoder_path``: local SigLIP folder; ``head_path``: ``aesthetic_predictor_v2_5.pth``.
    """

    name = "aesthetic"
    higher_is_better = True

    def __init__(self, *, encoder_path: str, head_path: str, device: str = "cpu", dtype: str = "float32",
                 batch_size: int = 16) -> None:
        if dtype not in ("float32", "bfloat16", "float16"):
            raise ConfigError(f"aesthetic dtype must be float32, bfloat16 or float16, got {dtype!r}")
        self.encoder_path = str(encoder_path)
        self.head_path = str(head_path)
        self.device = device
        self.dtype = dtype
        self.batch_size = int(batch_size)
        self.model_id = f"aesthetic-v2.5:{Path(self.encoder_path).name}"
        self._model = None

    def load(self) -> None:
        if self._model is not None:
            return
        if not Path(self.encoder_path).is_dir():
            raise ConfigError(f"SigLIP folder not found: {self.encoder_path} (google/siglip-so400m-patch14-384 "
                              "saved locally)")
        if not Path(self.head_path).is_file():
            raise ConfigError(f"aesthetic head not found: {self.head_path} (aesthetic_predictor_v2_5.pth from "
                              "discus0434/aesthetic-predictor-v2-5/models)")
        import torch
        from transformers import SiglipImageProcessor, SiglipVisionModel

        dtype = getattr(torch, self.dtype)
        model = SiglipVisionModel.from_pretrained(self.encoder_path, dtype=dtype).to(self.device).eval()
        head = build_head(model.config.hidden_size)
        state = torch.load(self.head_path, map_location="cpu", weights_only=True)
        if isinstance(state, Mapping) and any(k.startswith("layers.") for k in state):
            state = {k[len("layers."):]: v for k, v in state.items() if k.startswith("layers.")}
        try:
            head.load_state_dict(state)
        except RuntimeError as exc:
            raise ConfigError(f"{self.head_path} is not an Aesthetic Predictor V2.5 head for hidden size "
                              f"{model.config.hidden_size}: {' '.join(str(exc).split())[:300]}") from None
        self._head = head.to(device=self.device, dtype=dtype).eval()
        self._processor = SiglipImageProcessor.from_pretrained(self.encoder_path)
        self._model = model
        self._torch_dtype = dtype

    def __call__(self, images: Sequence[Any]) -> list[float]:
        """Scores of RGB images (PIL images or paths), one float each."""
        import torch

        from mio_eval.media import load_image

        self.load()
        scores: list[float] = []
        items = [load_image(x) for x in images]
        for start in range(0, len(items), self.batch_size):
            chunk = items[start:start + self.batch_size]
            pixels = self._processor(images=chunk, return_tensors="pt")["pixel_values"]
            with torch.no_grad():
                pooled = self._model(pixel_values=pixels.to(self.device, self._torch_dtype)).pooler_output
                pooled = pooled / pooled.norm(dim=-1, keepdim=True)
                out = self._head(pooled)
            scores.extend(float(x) for x in out.float().reshape(-1).cpu().numpy())
        return scores

    def provenance(self) -> Mapping[str, Any]:
        info: dict[str, Any] = {"metric": "aesthetic_predictor_v2.5", "model": self.model_id, "model_id": self.model_id,
                                "encoder_path": self.encoder_path, "head_path": self.head_path, "dtype": self.dtype,
                                "reference": "discus0434/aesthetic-predictor-v2-5 @ c0e1556 siglip_v2_5.py"}
        if self._model is not None:
            import transformers

            info.update(transformers=transformers.__version__, hidden_size=int(self._model.config.hidden_size),
                        image_size=int(self._model.config.image_size))
        return info

    def result(self, scores: Sequence[float]) -> MetricResult:
        n = len(scores)
        return MetricResult(name="aesthetic", value=float(np.mean(scores)) if n else None, higher_is_better=True,
                            variant=f"v2.5/{self.dtype}", provenance="Aesthetic Predictor V2.5 (SigLIP + linear "
                            "head), mean over images", scale=1.0, n=n, extra={"model": self.model_id})
