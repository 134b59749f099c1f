"""Prompt templates with media markers, shared by the image understanding tasks.

A template is the YAML string a task renders; ``{image}`` marks where the sample's images go (all
of them, in order: one photo, or a video's frames), every other ``{name}`` is a text field
(``{question}``, ``{choice_a}``...). Fields are substituted literally (a question holding ``{`` is
safe, unlike ``str.format``). The result is the ordered part tuple of a request: text pieces
between markers become ``Text`` parts, empty pieces are dropped.

>>> from mio_eval.types import Image
>>> render("{image}{question}\\nAnswer briefly.", [Image("a.jpg")], question="What?")
(Image(path='a.jpg'), Text(text='What?\\nAnswer briefly.'))
"""

from __future__ import annotations

import re
from typing import Sequence

from mio_eval.errors import ConfigError
from mio_eval.types import Part, Text

__all__ = ["render", "check_template", "IMAGE_MARKER", "stop_at"]

IMAGE_MARKER = "{image}"
_FIELD = re.compile(r"\{([a-z_]+)\}")


def check_template(template: str, fields: Sequence[str], *, what: str) -> str:
    """ConfigError unless ``template`` is a string using only ``{image}`` and ``fields``."""
    if not isinstance(template, str) or not template:
        raise ConfigError(f"{what} must be a non-empty string")
    unknown = sorted(set(_FIELD.findall(template)) - {"image", *fields})
    if unknown:
        raise ConfigError(f"{what} uses unknown field(s) {', '.join(unknown)}; known: image, {', '.join(fields)}")
    return template


def render(template: str, media: Sequence[Part], **fields: str) -> tuple[Part, ...]:
    """The template's ordered parts; ``media`` goes where ``{image}`` is (or first, when absent)."""
    pieces = template.split(IMAGE_MARKER)
    if len(pieces) == 1:
        pieces = ["", pieces[0]]
    parts: list[Part] = []
    for n, piece in enumerate(pieces):
        if n:
            parts.extend(media)
        for key, value in fields.items():
            piece = piece.replace("{" + key + "}", value)
        if piece:
            parts.append(Text(piece))
    return tuple(parts)


def stop_at(text: str, stops: Sequence[str]) -> str:
    """``text`` cut before the first occurrence of any stop string (lmms-eval's ``until``)."""
    cut = len(text)
    for stop in stops:
        at = text.find(stop) if stop else -1
        if at != -1:
            cut = min(cut, at)
    return text[:cut]
