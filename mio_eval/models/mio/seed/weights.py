"""SEED tokenizer weights: read the released files into ``SeedImageTokenizer``, write any model
in the released layout (imported lazily: this module imports torch).

Weights (``load_seed_tokenizer``), read with ``torch.load(weights_only=True)`` or from a
``.safetensors`` file of the same stem, from ``<checkpoint>/seed-tokenizer-2/``:

* ``seed_quantizer.pt``: the 370 non-ViT tensors above (``ln_vision``, ``query_tokens``, ``Qformer.*``,
  ``quantize.*``, the task layers, both block stacks, ``image_down``, ``distill_image_proj``). Every
  one must be present with the right shape (loaded with ``strict=True``); keys the network does not
  have are ignored and counted in ``provenance()["ignored_keys"]``, as the original's
  ``load_state_dict(strict=False)`` does -- loading the released file into the original model
  reports "missing keys: 511 unexpected keys: 146" (OpenMOSS/AnyGPT#14): the 511 are exactly the
  ViT's tensors, so the file carries all 370 and 146 extras.
* ``eva_vit_g.pth``: the 511 ViT tensors (LAVIS' EVA-CLIP-g file). Blocks past ``vit_depth`` (the
  40th) are dropped, the position table is resized bicubically if its grid differs (as the original
  ``interpolate_pos_embed``), and the rest loads with ``strict=True``; other extras are counted.
  ``visual_encoder.*`` tensors inside ``seed_quantizer.pt``, if any, override it (the original loads
  the ViT file first, then the SEED checkpoint over the whole model).

``save_seed_checkpoint`` writes any model in the released layout (plus a ``seed_config.json``
that only checkpoints with a non-default architecture or decoder steps carry).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

from mio_eval.errors import ConfigError
from mio_eval.models.mio.seed.config import EVA_VIT_FILE, SEED_CONFIG_FILE, SEED_QUANTIZER_FILE, SeedConfig
from mio_eval.models.mio.seed.network import SeedImageTokenizer

__all__ = ["load_seed_tokenizer", "save_seed_checkpoint"]


def _weights_file(directory: Path, name: str) -> Path:
    """``name`` or the ``.safetensors`` file of the same stem; ConfigError if neither exists."""
    path = directory / name
    if path.is_file():
        return path
    alt = path.with_suffix(".safetensors")
    if alt.is_file():
        return alt
    raise ConfigError(f"SEED image tokenizer file missing: {path} (or {alt.name})")


def _read_state_dict(path: Path) -> dict:
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            state = load_file(str(path), device="cpu")
        else:
            state = torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any unreadable file is one config error line
        raise ConfigError(f"cannot read {path}: {' '.join(str(exc).split())[:300]}") from None
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ConfigError(f"{path} is not a flat state dict of tensors")
    return state


def _load_strict(module, state: dict, path: Path, what: str) -> list[str]:
    """Load ``module`` from ``state`` with ``strict=True`` over the module's own keys; keys the
    module does not have are returned (ignored, as the original's strict=False load ignores them)."""
    expected = module.state_dict()
    missing = [k for k in expected if k not in state]
    if missing:
        raise ConfigError(f"{path}: {len(missing)} of the {len(expected)} {what} tensors are missing "
                          f"(first: {missing[0]}); not a SEED {what} file for this config?")
    for key, tensor in expected.items():
        if tuple(state[key].shape) != tuple(tensor.shape):
            raise ConfigError(f"{path}: {key} has shape {tuple(state[key].shape)}, "
                              f"the {what} needs {tuple(tensor.shape)}")
    module.load_state_dict({k: state[k] for k in expected}, strict=True)
    return sorted(k for k in state if k not in expected)


def _resize_pos_embed(pos_embed, num_patches: int):
    """The original ``interpolate_pos_embed``: bicubic resize of the patch grid, class token kept."""
    old, new = int((pos_embed.shape[-2] - 1) ** 0.5), int(num_patches ** 0.5)
    if old == new:
        return pos_embed
    dim = pos_embed.shape[-1]
    tokens = pos_embed[:, 1:].float().reshape(-1, old, old, dim).permute(0, 3, 1, 2)
    tokens = torch.nn.functional.interpolate(tokens, size=(new, new), mode="bicubic", align_corners=False)
    return torch.cat((pos_embed[:, :1].float(), tokens.permute(0, 2, 3, 1).flatten(1, 2)), dim=1)


def load_seed_tokenizer(directory: str | Path, *, config: SeedConfig | None = None, device: str = "cpu",
                        dtype: str = "float32"):
    """``SeedImageTokenizer`` from ``directory`` (``seed-tokenizer-2/``): ``seed_quantizer.pt`` +
    ``eva_vit_g.pth`` (see the module docstring). ``config`` defaults to ``seed_config.json`` in the
    directory if there is one, else the real architecture. Returns ``(model, info)``."""
    directory = Path(directory)
    extra: dict[str, Any] = {}
    config_path = directory / SEED_CONFIG_FILE
    if config_path.is_file():
        try:
            extra = json.loads(config_path.read_text(encoding="utf-8"))
            file_config = SeedConfig.from_dict(extra["config"])
        except (ValueError, KeyError, TypeError) as exc:
            raise ConfigError(f"bad SEED config {config_path}: {exc}") from None
        config = config or file_config
    config = config or SeedConfig()
    if dtype not in ("float32", "float16", "bfloat16"):
        raise ConfigError(f"SEED dtype must be float32, float16 or bfloat16, got {dtype!r}")
    quantizer_path = _weights_file(directory, SEED_QUANTIZER_FILE)
    quantizer_state = _read_state_dict(quantizer_path)
    vit_in_quantizer = {k[len("visual_encoder."):]: quantizer_state.pop(k)
                        for k in [k for k in quantizer_state if k.startswith("visual_encoder.")]}
    model = SeedImageTokenizer(config)
    n_vit = len(model.visual_encoder.state_dict())
    if len(vit_in_quantizer) >= n_vit:  # the SEED file carries the whole ViT: no eva_vit_g.pth needed
        vit_path, vit_state = quantizer_path, {}
    else:
        vit_path = _weights_file(directory, EVA_VIT_FILE)
        vit_state = _read_state_dict(vit_path)
    # BLIP-2 keeps the first vit_depth blocks of EVA-CLIP-g (40 -> 39)
    dropped = [k for k in vit_state if k.startswith("blocks.") and int(k.split(".")[1]) >= config.vit_depth]
    for key in dropped:
        del vit_state[key]
    if "pos_embed" in vit_state:
        vit_state["pos_embed"] = _resize_pos_embed(vit_state["pos_embed"], (config.image_size // config.patch_size) ** 2)
    vit_state.update(vit_in_quantizer)  # the SEED checkpoint is loaded over the ViT file
    ignored_vit = _load_strict(model.visual_encoder, vit_state, vit_path, "EVA-ViT")
    ignored = _load_strict(_WithoutVit(model), quantizer_state, quantizer_path, "SEED quantizer")
    model = model.to(device=device, dtype=getattr(torch, dtype)).eval()
    info = {"config": config.to_dict(), "quantizer_file": str(quantizer_path), "vit_file": str(vit_path),
            "ignored_keys": {"quantizer": len(ignored), "vit": len(ignored_vit) + len(dropped)},
            "dropped_vit_blocks": sorted({int(k.split(".")[1]) for k in dropped}), "dtype": dtype,
            "num_inference_steps": extra.get("num_inference_steps")}
    return model, info


class _WithoutVit:
    """``load_strict`` adaptor: the model's state dict minus ``visual_encoder.*``."""

    def __init__(self, model) -> None:
        self.model = model

    def state_dict(self) -> dict:
        return self.model.quantizer_state_dict()

    def load_state_dict(self, state: dict, strict: bool = True):
        full = {f"visual_encoder.{k}": v for k, v in self.model.visual_encoder.state_dict().items()}
        full.update(state)
        return self.model.load_state_dict(full, strict=strict)


def save_seed_checkpoint(model, directory: str | Path, *, safetensors: bool = False,
                         num_inference_steps: int | None = None) -> Path:
    """Write ``model`` in the released layout: ``seed_quantizer.pt`` (all but the ViT) and
    ``eva_vit_g.pth`` (the ViT, unprefixed); plus ``seed_config.json`` (config and decoder steps)
    unless this is the real architecture with default settings (the released checkpoint has none)."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    parts = {SEED_QUANTIZER_FILE: model.quantizer_state_dict(), EVA_VIT_FILE: model.visual_encoder.state_dict()}
    for name, state in parts.items():
        state = {k: v.detach().cpu().contiguous() for k, v in state.items()}
        if safetensors:
            from safetensors.torch import save_file

            save_file(state, str((directory / name).with_suffix(".safetensors")))
        else:
            torch.save(state, directory / name)
    if model.config != SeedConfig() or num_inference_steps is not None:
        payload = {"what": "mio_eval SEED tokenizer settings (the released checkpoint has none: real architecture)",
                   "config": model.config.to_dict()}
        if num_inference_steps is not None:
            payload["num_inference_steps"] = int(num_inference_steps)
        (directory / SEED_CONFIG_FILE).write_text(json.dumps(payload, indent=2) + "\n", encoding="utf-8")
    return directory
