"""MIO's output blocks on the generated ids, and the repair policies for irregular ones.

MIO's vocabulary (MIO-Team/MIO @ 6c0b5e6, ``tokenization_mio.py``): an image block is ``<image>``,
``<img0..8191>`` codes, ``</image>``; a speech block is ``<spch>``, ``<spch0..4095>`` codes (token
``n`` is RVQ layer ``n // 1024``, code ``n % 1024``), ``</spch>``. MIO itself splits decoded
strings and crashes or drops audio on irregular blocks (``infer.py``'s ``check_speech_completeness``;
SEED's fixed 32-row position table); here ``split_blocks`` works on token strings and
``parse_speech`` / ``parse_image`` either repair a block under a named policy or return an
error -- never an exception for model output.

Policies (``POLICIES``): ``repair`` applies the named repairs below and reports them;
``strict`` turns any irregularity into an invalid output.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

from mio_eval.errors import ConfigError
from mio_eval.models.hf_base import SampleError
from mio_eval.models.mio.codecs import IMAGE_CODES, SPEECH_CODEBOOK
from mio_eval.types import Modality

__all__ = ["Block", "Parsed", "POLICIES", "split_blocks", "parse_speech", "parse_image", "check_policy", "speech_block",
           "image_block", "output_provenance"]

POLICIES = ("repair", "strict")


def check_policy(what: str, policy: str) -> str:
    if policy not in POLICIES:
        raise ConfigError(f"{what} must be one of {', '.join(POLICIES)}, got {policy!r}")
    return policy


@dataclass(frozen=True)
class Block:
    """One ``<image>…</image>`` / ``<spch>…</spch>`` block of generated codes."""

    modality: Modality
    codes: tuple[int, ...]
    terminated: bool


@dataclass(frozen=True)
class Parsed:
    """What a decode of codes needs (``rows`` of codes, or ``None``) and the named repairs."""

    rows: tuple[tuple[int, ...], ...] | None
    repairs: tuple[str, ...] = ()
    error: str | None = None


def split_blocks(tokens: Sequence[str]) -> tuple[list[int], list[Block], int]:
    """Split generated token strings into (indices of text tokens, blocks, stray modality tokens).

    A block runs from its opening tag over consecutive codes of its kind to the closing tag; a
    block cut by the end of the output or by any other token is unterminated. Codes and tags
    outside a block are stray (not text)."""
    text, blocks, stray = [], [], 0
    open_kind: Modality | None = None
    codes: list[int] = []
    for i, token in enumerate(tokens):
        kind, value = _classify(token)
        if open_kind is not None:
            if kind == ("code", open_kind):
                codes.append(value)
                continue
            closed = kind == ("close", open_kind)
            blocks.append(Block(open_kind, tuple(codes), closed))
            open_kind, codes = None, []
            if closed:
                continue
        if kind is None:
            text.append(i)
        elif kind[0] == "open":
            open_kind, codes = kind[1], []
        else:
            stray += 1
    if open_kind is not None:
        blocks.append(Block(open_kind, tuple(codes), False))
    return text, blocks, stray


_TOKEN = re.compile(r"^<(/?)(image|spch)>$|^<(img|spch)(\d+)>$")


def _classify(token: str) -> tuple[tuple[str, Modality] | None, int]:
    match = _TOKEN.match(token)
    if match is None:
        return None, 0
    if match.group(2):
        modality = Modality.IMAGE if match.group(2) == "image" else Modality.AUDIO
        return ("close" if match.group(1) else "open", modality), 0
    modality = Modality.IMAGE if match.group(3) == "img" else Modality.AUDIO
    return ("code", modality), int(match.group(4))


def parse_speech(codes: Sequence[int], *, terminated: bool = True, policy: str = "repair") -> Parsed:
    """MIO's speech block: content (0-1023), then timbre0/1/2 (+1024/+2048/+3072), four runs of
    equal length (``check_speech_completeness``). Named repairs under ``policy="repair"``:
    ``truncate_to_shortest`` (four runs in order, unequal lengths), ``content_only`` (the block
    starts with content but its timbre runs are missing, disordered or extra; decoding RVQ
    layer 0 alone gives speech of the same length), ``unterminated`` (no ``</spch>``: MIO drops
    the audio). Anything else, or any irregularity under ``strict``, is an error."""
    check_policy("speech policy", policy)
    if not codes:
        return Parsed(None, error="empty speech block")
    runs: list[tuple[int, list[int]]] = []
    for code in codes:
        layer = code // SPEECH_CODEBOOK
        if runs and runs[-1][0] == layer:
            runs[-1][1].append(code - layer * SPEECH_CODEBOOK)
        else:
            runs.append((layer, [code - layer * SPEECH_CODEBOOK]))
    repairs = [] if terminated else ["unterminated"]
    layers, lengths = [r[0] for r in runs], [len(r[1]) for r in runs]
    if layers[0] != 0:
        return Parsed(None, error=f"speech block starts with timbre layer {layers[0]} codes, not content")
    if layers == [0, 1, 2, 3]:
        if len(set(lengths)) == 1:
            rows = tuple(tuple(r[1]) for r in runs)
        else:
            repairs.append("truncate_to_shortest")
            n = min(lengths)
            rows = tuple(tuple(r[1][:n]) for r in runs)
    else:
        repairs.append("content_only")
        rows = (tuple(runs[0][1]),)
    if repairs and policy == "strict":
        return Parsed(None, error=f"irregular speech block (runs {layers} of lengths {lengths}"
                                  f"{'' if terminated else ', unterminated'}); policy strict")
    return Parsed(rows, tuple(repairs))


def parse_image(codes: Sequence[int], *, terminated: bool = True, policy: str = "repair") -> Parsed:
    """An image block must hold exactly 32 codes (SEED's 32 queries; MIO crashes otherwise:
    ``infer.py``). Repairs under ``repair``: ``truncate_to_32`` (more codes), ``unterminated``.
    Fewer than 32 codes is an error (padding would invent content)."""
    check_policy("image policy", policy)
    repairs = [] if terminated else ["unterminated"]
    if len(codes) < IMAGE_CODES:
        return Parsed(None, error=f"image block has {len(codes)} codes, needs {IMAGE_CODES}")
    if len(codes) > IMAGE_CODES:
        repairs.append("truncate_to_32")
    if repairs and policy == "strict":
        return Parsed(None, error=f"irregular image block ({len(codes)} codes"
                                  f"{'' if terminated else ', unterminated'}); policy strict")
    return Parsed((tuple(codes[:IMAGE_CODES]),), tuple(repairs))


def speech_block(codes: Sequence[Sequence[int]]) -> str:
    """The prompt string of encoded speech: content codes only (MIO's default for speech input)."""
    return "<spch>" + "".join(f"<spch{c}>" for c in codes[0]) + "</spch>"


def image_block(codes: Sequence[int]) -> str:
    """The prompt string of an encoded image; a codec that returns other than 32 codes fails the sample."""
    if len(codes) != IMAGE_CODES:
        raise SampleError(f"image codec returned {len(codes)} codes, expected {IMAGE_CODES}")
    return "<image>" + "".join(f"<img{c}>" for c in codes) + "</image>"


def output_provenance(counts: Mapping[str, int], repairs: Sequence[str]) -> dict[str, Any]:
    """One output's ``Output.provenance``: its non-zero counts and its repairs (empty when none)."""
    info: dict[str, Any] = {}
    if counts:
        info["counts"] = dict(sorted(counts.items()))
    if repairs:
        info["repairs"] = list(repairs)
    return info
