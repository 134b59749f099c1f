"""Pixel and perceptual image distances, and MME-Unify's FVD-style video distance.

* **PSNR** (:func:`psnr`): ``skimage.metrics.peak_signal_noise_ratio``. Settings pinned and
  recorded: ``resize="reference"`` (default) resizes the generated image to the reference size
  with PIL bilinear and compares uint8 RGB with ``data_range=255``; ``resize="min_size"`` is
  MME-Unify's ``evaluate/Evaluate_Generation.py``: both images as [0, 1] tensors resized to
  (min H, min W) with ``torch.nn.functional.interpolate(bilinear, align_corners=False)``,
  ``data_range=1``. Identical images give ``inf`` (as the reference).
* **LPIPS** (:class:`LPIPS`): the ``lpips`` package's own ``LPIPS`` class (v0.1 linear layers,
  shipped inside the package). Its backbone (AlexNet/VGG/SqueezeNet ImageNet weights) would be
  downloaded by torchvision, so we build it with ``pnet_rand=True`` and load the torchvision
  backbone state dict from a local file (``backbone_path``, e.g. ``alexnet-owt-7be5be79.pth``).
  ``input_range="minus1_1"`` maps [0, 1] to [-1, 1] as the package requires
  (``normalize=True``); ``"mme_unify_0_1"`` feeds [0, 1] unchanged, as MME-Unify's scorer does
  (a misuse we can replicate, labelled).
* **FVD-style distance** (:func:`video_feature_distance`), MME-Unify
  ``evaluate/Evaluate_Generation_Video.py``: frames ``Resize((224, 224))`` (PIL bilinear),
  ImageNet mean/std, ResNet-50 without its ``fc`` (2048-d average-pooled features), features
  averaged over frames into one vector per video; with one vector per side its ``calculate_fid``
  degenerates to the **squared Euclidean distance** of the two mean vectors (no covariance
  term). Frames: the generated video's key frames (:func:`keyframe_indices`: scene change =
  mean absolute grey difference > 20, else 16 uniform) and as many uniformly spaced reference
  frames. Mapping to 0-100 (:func:`normalize_video_scores`): ``100 * (1 - (x - 1) / 999)``
  (1 -> 100, 500.5 -> 50, 1000 -> 0; unclipped: 1500 -> -50.05005) per sample, then the mean; **quirk**: if every score in
  the list is equal (including a single sample) the reference returns 100 for all.

>>> fvd_to_score(1.0), fvd_to_score(500.5), fvd_to_score(1000.0), round(fvd_to_score(1500.0), 2)
(100.0, 50.0, 0.0, -50.05)
>>> normalize_video_scores([700.0]), normalize_video_scores([700.0], all_equal_quirk=False)
([100.0], [30.03003003003003])
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from mio_eval.errors import ConfigError
from mio_eval.keyframes import scene_changes
from mio_eval.media import load_image, read_video_frames  # noqa: F401 - re-exported
from mio_eval.media import uniform_indices as _uniform
from mio_eval.metrics.base import MetricResult

__all__ = [
    "PSNR_RESIZE_MODES",
    "LPIPS_INPUT_RANGES",
    "load_rgb",
    "resize_pair",
    "psnr",
    "LPIPS",
    "ResNet50Features",
    "read_video_frames",
    "keyframe_indices",
    "uniform_indices",
    "FRAME_CODECS",
    "frame_codec",
    "video_feature_distance",
    "fvd_to_score",
    "normalize_video_scores",
    "mean_result",
]

PSNR_RESIZE_MODES = ("reference", "min_size")
LPIPS_INPUT_RANGES = ("minus1_1", "mme_unify_0_1")
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


# The name tasks/mme_unify/ imports; the loader itself is mio_eval.media.load_image.
load_rgb = load_image


def _to_float_tensor(image):
    import torch

    array = np.asarray(image, dtype=np.float32) / np.float32(255.0)  # == torchvision ToTensor
    return torch.from_numpy(array.transpose(2, 0, 1).copy()).unsqueeze(0)


def resize_pair(generated, reference, *, mode: str = "reference") -> tuple[np.ndarray, np.ndarray, float]:
    """Bring two images to one size; returns (generated, reference, data_range) arrays (H, W, 3).

    ``reference``: generated -> reference size, PIL bilinear, uint8 arrays, data_range 255.
    ``min_size``: MME-Unify's torch bilinear resize of both to (min H, min W), float [0, 1].
    """
    from PIL import Image

    gen, ref = load_image(generated), load_image(reference)
    if mode == "reference":
        if gen.size != ref.size:
            gen = gen.resize(ref.size, Image.BILINEAR)
        return np.asarray(gen), np.asarray(ref), 255.0
    if mode == "min_size":
        import torch.nn.functional as F

        a, b = _to_float_tensor(gen), _to_float_tensor(ref)
        if a.shape != b.shape:
            size = (min(a.shape[2], b.shape[2]), min(a.shape[3], b.shape[3]))
            a = F.interpolate(a, size=size, mode="bilinear", align_corners=False)
            b = F.interpolate(b, size=size, mode="bilinear", align_corners=False)
        return a[0].numpy().transpose(1, 2, 0), b[0].numpy().transpose(1, 2, 0), 1.0
    raise ValueError(f"resize mode must be one of {PSNR_RESIZE_MODES}, got {mode!r}")


def psnr(generated, reference, *, resize: str = "reference") -> float:
    """PSNR in dB of ``generated`` against ``reference`` (``inf`` when identical).

    >>> import numpy as np; from PIL import Image
    >>> a = Image.fromarray(np.zeros((4, 4, 3), np.uint8)); b = Image.fromarray(np.full((4, 4, 3), 255, np.uint8))
    >>> psnr(a, b), psnr(a, a)
    (0.0, inf)
    """
    from skimage.metrics import peak_signal_noise_ratio

    gen, ref, data_range = resize_pair(generated, reference, mode=resize)
    if np.array_equal(gen, ref):
        return math.inf  # skimage divides by zero (warning); the reference returns inf
    return float(peak_signal_noise_ratio(ref.astype(np.float64), gen.astype(np.float64), data_range=data_range))


class LPIPS:
    """LPIPS distance through the ``lpips`` package's ``LPIPS`` class, weights from local files.

    ``backbone_path``: a torchvision state dict of the backbone (``alexnet``/``vgg16``/
    ``squeezenet1_1``); ``linear_path``: optional v0.1 linear-layer weights (default: the file the
    package ships). Construction is cheap; ``load()`` builds the network.
    """

    _TV = {"alex": "alexnet", "vgg": "vgg16", "squeeze": "squeezenet1_1"}

    def __init__(self, *, net: str = "alex", backbone_path: str | None = None, linear_path: str | None = None,
                 input_range: str = "minus1_1", resize: str = "min_size", device: str = "cpu") -> None:
        if net not in self._TV:
            raise ConfigError(f"LPIPS net must be one of {sorted(self._TV)}, got {net!r}")
        if input_range not in LPIPS_INPUT_RANGES:
            raise ConfigError(f"LPIPS input_range must be one of {LPIPS_INPUT_RANGES}, got {input_range!r}")
        if resize not in PSNR_RESIZE_MODES:
            raise ConfigError(f"LPIPS resize must be one of {PSNR_RESIZE_MODES}, got {resize!r}")
        self.net, self.backbone_path, self.linear_path = net, backbone_path, linear_path
        self.input_range, self.resize, self.device = input_range, resize, device
        self._model = None

    @property
    def variant(self) -> str:
        return f"{self.net}-v0.1/{self.input_range}/{self.resize}"

    def load(self) -> None:
        if self._model is not None:
            return
        if not self.backbone_path or not Path(self.backbone_path).is_file():
            raise ConfigError(f"LPIPS backbone weights not found: {self.backbone_path} (a local torchvision "
                              f"{self._TV[self.net]} state dict; nothing is downloaded)")
        try:
            import lpips
        except ImportError:
            raise ConfigError("lpips is not installed: pip install lpips") from None
        import torch

        import warnings

        with warnings.catch_warnings():  # lpips passes torchvision's deprecated ``pretrained=False``
            warnings.simplefilter("ignore", UserWarning)
            model = lpips.LPIPS(net=self.net, version="0.1", pretrained=True, pnet_rand=True,
                                model_path=self.linear_path, verbose=False)
        state = torch.load(self.backbone_path, map_location="cpu", weights_only=True)
        features = {k[len("features."):]: v for k, v in state.items() if k.startswith("features.")}
        if not features:
            raise ConfigError(f"{self.backbone_path}: no 'features.*' tensors (not a torchvision {self._TV[self.net]})")
        # lpips's trunk keeps torchvision's feature modules under their original indices, split into
        # slices: net.slice<k>.<index>.<param> <- features.<index>.<param>
        own = {}
        for name in model.net.state_dict():
            _, index_param = name.split(".", 1)
            if index_param not in features:
                raise ConfigError(f"{self.backbone_path}: missing features.{index_param}")
            own[name] = features[index_param]
        model.net.load_state_dict(own)
        self._model = model.to(self.device).eval()
        self._version = getattr(lpips, "__version__", "unknown")

    def __call__(self, generated, reference) -> float:
        import torch

        self.load()
        gen, ref, data_range = resize_pair(generated, reference, mode=self.resize)
        a, b = (torch.from_numpy((np.asarray(x, dtype=np.float32) / np.float32(data_range)).transpose(2, 0, 1).copy())
                .unsqueeze(0).to(self.device) for x in (gen, ref))
        with torch.no_grad():
            return float(self._model(a, b, normalize=self.input_range == "minus1_1").item())

    def provenance(self) -> Mapping[str, Any]:
        info = {"metric": "lpips", "net": self.net, "version": "0.1", "backbone_path": self.backbone_path,
                "linear_path": self.linear_path or "shipped with the lpips package", "input_range": self.input_range,
                "resize": self.resize}
        if self._model is not None:
            info["lpips_package"] = self._version
        return info


class ResNet50Features:
    """torchvision ResNet-50 without ``fc`` (2048-d pooled features), weights from a local file."""

    def __init__(self, *, weights_path: str | None = None, device: str = "cpu", batch_size: int = 16) -> None:
        self.weights_path = weights_path
        self.device = device
        self.batch_size = int(batch_size)
        self._model = None

    def load(self) -> None:
        if self._model is not None:
            return
        if not self.weights_path or not Path(self.weights_path).is_file():
            raise ConfigError(f"ResNet-50 weights not found: {self.weights_path} (a local torchvision resnet50 "
                              "state dict, e.g. resnet50-0676ba61.pth; nothing is downloaded)")
        import torch
        import torchvision

        model = torchvision.models.resnet50(weights=None)
        model.load_state_dict(torch.load(self.weights_path, map_location="cpu", weights_only=True))
        self._model = torch.nn.Sequential(*list(model.children())[:-1]).to(self.device).eval()

    def __call__(self, frames: Sequence[Any]) -> np.ndarray:
        """Mean over frames of the per-frame 2048-d features (the reference's ``features.mean(dim=1)``)."""
        import torch
        from PIL import Image

        self.load()
        mean, std = np.asarray(IMAGENET_MEAN, np.float32), np.asarray(IMAGENET_STD, np.float32)
        feats = []
        for start in range(0, len(frames), self.batch_size):
            batch = [((np.asarray(load_image(f).resize((224, 224), Image.BILINEAR), np.float32) / np.float32(255.0)
                       - mean) / std).transpose(2, 0, 1) for f in frames[start:start + self.batch_size]]
            with torch.no_grad():
                out = self._model(torch.from_numpy(np.stack(batch)).to(self.device))
            feats.append(out.reshape(out.shape[0], -1).cpu().numpy())
        return np.concatenate(feats).astype(np.float64).mean(axis=0)

    def provenance(self) -> Mapping[str, Any]:
        return {"model": "torchvision resnet50 (no fc), 2048-d avg-pooled", "weights_path": self.weights_path,
                "preprocess": "PIL bilinear resize to 224x224, ImageNet mean/std"}


# --- video frames ---------------------------------------------------------------------------------


def uniform_indices(total: int, n: int) -> list[int]:
    """``np.linspace(0, total - 1, n, dtype=int)``, each frame once (the reference reads frames
    sequentially and keeps those whose index is in the list, so duplicates collapse)."""
    return sorted(set(_uniform(total, n, rounding="floor")))


def keyframe_indices(frames: Sequence[Any], *, num_frames: int = 16, min_scene_change: float = 20.0) -> list[int]:
    """The reference's ``extract_keyframes``: frame 0 plus every frame whose mean absolute grey
    difference to the previous frame exceeds ``min_scene_change``; fewer than ``num_frames`` ->
    ``num_frames`` uniform indices instead; more -> ``num_frames`` evenly chosen among them."""
    keys, count = scene_changes(frames, threshold=min_scene_change)
    if len(keys) < num_frames:
        return uniform_indices(count, num_frames)
    if len(keys) > num_frames:
        return [keys[i] for i in _uniform(len(keys), num_frames, rounding="floor")]
    return keys


FRAME_CODECS = ("none", "jpeg_q95")


def frame_codec(frame, codec: str = "none"):
    """A video frame (PIL) as a scorer reads it: ``none`` unchanged; ``jpeg_q95`` through a JPEG
    file, as MME-Unify's ``extract_keyframes`` writes key frames (``cv2.imwrite(.jpg)``: quality 95,
    4:2:0) and its scorer reads them back with PIL. PIL's quality-95 encoder writes the same bytes
    as OpenCV's (checked against the reference's files in ``tests/test_parity_mme_unify_generation.py``).

    >>> from PIL import Image
    >>> frame_codec(Image.new("RGB", (16, 16), (200, 10, 10)), "jpeg_q95").size
    (16, 16)
    """
    if codec == "none":
        return frame
    if codec != "jpeg_q95":
        raise ValueError(f"frame codec must be one of {FRAME_CODECS}, got {codec!r}")
    import io

    from PIL import Image

    buffer = io.BytesIO()
    frame.convert("RGB").save(buffer, format="JPEG", quality=95)
    with Image.open(io.BytesIO(buffer.getvalue())) as decoded:
        return decoded.convert("RGB")


def video_feature_distance(generated_frames: Sequence[Any], reference_frames: Sequence[Any],
                           extractor: ResNet50Features) -> float:
    """Squared L2 distance between the frame-averaged ResNet-50 features of two frame lists."""
    gen, ref = extractor(list(generated_frames)), extractor(list(reference_frames))
    return float(np.sum((ref - gen) ** 2))


def fvd_to_score(x: float) -> float:
    """MME-Unify's mapping ``100 * (1 - (x - 1) / 999)``: 1 -> 100, 1000 -> 0, unclipped."""
    return float(100.0 * (1.0 - (float(x) - 1.0) / 999.0))


def normalize_video_scores(scores: Sequence[float], *, all_equal_quirk: bool = True) -> list[float]:
    """Map each raw distance with :func:`fvd_to_score`. With ``all_equal_quirk`` (the reference's
    ``normalize_scores``) a list whose values are all equal — a single sample included — maps to
    100 each whatever the value."""
    arr = np.asarray(scores, dtype=np.float64)
    if arr.size == 0:
        return []
    if all_equal_quirk and arr.max() == arr.min():
        return [100.0] * int(arr.size)
    return [fvd_to_score(x) for x in arr]


def mean_result(name: str, values: Sequence[float], *, higher_is_better: bool, variant: str, provenance: str,
                scale: float = 1.0, **extra: Any) -> MetricResult:
    """A MetricResult holding the mean of ``values`` (``None`` when empty)."""
    n = len(values)
    value = float(np.mean(values)) if n else None
    return MetricResult(name=name, value=value, higher_is_better=higher_is_better, variant=variant,
                        provenance=provenance, scale=scale, n=n, extra=extra)
