"""Typed ``generation`` settings: the decoding keys a task may set, checked when the task is built.

A task's YAML ``generation:`` block (and ``judge_generation:`` of the judged video QA tasks) is
passed through :class:`GenerationConfig`, which knows every key some adapter in
``mio_eval/models/`` reads. An unknown key (a typo such as ``num_beam``) is a ConfigError naming
the key, the closest valid one and the valid keys (exit code 2) instead of being ignored while
the adapter falls back to its default; a value of the wrong type is refused the same way.

``Request.generation`` stays a plain mapping (:func:`generation_settings` returns a dict of the
keys that were set), so adapters read it as before and ignore the keys their backend has no use
for. Who reads what:

* ``hf_lm.Decoding`` (hf_lm, hf_vlm, mio): ``max_new_tokens``, ``num_beams``, ``do_sample``,
  ``temperature``, ``top_p``, ``repetition_penalty``, ``until``, ``seed``, ``chat``, ``system``;
* mio: ``length_penalty``, ``top_k``, ``video_frames``, ``video_frame_mode``; hf_vlm:
  ``video_frames``;
* diffusers_t2i: ``num_inference_steps``, ``guidance_scale``, ``height``, ``width``,
  ``negative_prompt``, ``seed``; hf_tts and dummy: ``seed`` (dummy also ``do_sample``).
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field, fields
from typing import Any, Mapping

from mio_eval.errors import ConfigError

__all__ = ["GenerationConfig", "generation_settings", "GENERATION_KEYS"]

_INT, _FLOAT, _BOOL, _STR, _STOP = "int", "float", "bool", "str", "str or list of str"


def _field(kind: str) -> Any:
    return field(default=None, metadata={"kind": kind})


@dataclass(frozen=True, kw_only=True)
class GenerationConfig:
    """Decoding settings; ``None`` = not set (the adapter's default applies)."""

    max_new_tokens: int | None = _field(_INT)
    num_beams: int | None = _field(_INT)
    do_sample: bool | None = _field(_BOOL)
    temperature: float | None = _field(_FLOAT)
    top_p: float | None = _field(_FLOAT)
    top_k: int | None = _field(_INT)
    repetition_penalty: float | None = _field(_FLOAT)
    length_penalty: float | None = _field(_FLOAT)
    until: str | tuple[str, ...] | None = _field(_STOP)
    seed: int | None = _field(_INT)
    chat: bool | None = _field(_BOOL)
    system: str | None = _field(_STR)
    video_frames: int | None = _field(_INT)
    video_frame_mode: str | None = _field(_STR)
    num_inference_steps: int | None = _field(_INT)
    guidance_scale: float | None = _field(_FLOAT)
    height: int | None = _field(_INT)
    width: int | None = _field(_INT)
    negative_prompt: str | None = _field(_STR)

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if value is not None:
                object.__setattr__(self, f.name, _checked(f.name, f.metadata["kind"], value))

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any] | None, *, where: str = "task.generation") -> "GenerationConfig":
        """The settings of a YAML block; ConfigError on an unknown key or a mistyped value."""
        data = dict(data or {})
        unknown = [k for k in data if k not in GENERATION_KEYS]
        if unknown:
            key = str(unknown[0])
            close = difflib.get_close_matches(key, GENERATION_KEYS, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise ConfigError(f"unknown key {where}.{key}{hint}; valid keys: {', '.join(GENERATION_KEYS)}")
        try:
            return cls(**data)
        except ConfigError as exc:
            raise ConfigError(f"{where}.{exc}") from None

    def as_dict(self) -> dict[str, Any]:
        """The keys that were set (what ``Request.generation`` holds)."""
        out = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if value is not None:
                out[f.name] = list(value) if isinstance(value, tuple) else value
        return out


GENERATION_KEYS: tuple[str, ...] = tuple(f.name for f in fields(GenerationConfig))


def _checked(name: str, kind: str, value: Any) -> Any:
    ok = {
        _INT: isinstance(value, int) and not isinstance(value, bool),
        _FLOAT: isinstance(value, (int, float)) and not isinstance(value, bool),
        _BOOL: isinstance(value, bool),
        _STR: isinstance(value, str),
        _STOP: isinstance(value, str) or (isinstance(value, (list, tuple)) and all(isinstance(v, str) for v in value)),
    }[kind]
    if not ok:
        raise ConfigError(f"{name} must be {kind}, got {type(value).__name__} {value!r:.60}")
    if kind == _STOP and not isinstance(value, str):
        return tuple(value)
    return value


def generation_settings(data: Mapping[str, Any] | None, *, where: str = "task.generation") -> dict[str, Any]:
    """A task's ``generation`` block checked by :class:`GenerationConfig`, as the plain dict a
    ``Request`` carries (only the keys that were set, values as given)."""
    return GenerationConfig.from_mapping(data, where=where).as_dict()
