"""What the transformers adapters share (``hf_lm``, ``hf_vlm``, MIO), written once.

* ``HFAdapter``: the constructor knobs (``path``, ``name``, ``dtype``, ``device``,
  ``max_length``, ``trust_remote_code``), their checks, offline ``from_pretrained`` loading with
  ``local_files_only=True`` (nothing is downloaded; remote code only when a config sets it), the
  weights put on ``device`` in eval mode, the context length and the weights digest
  (``mio_eval.checkpoints``).
* Decoding (``Decoding``): the settings an adapter reads from ``Request.generation``, hashable so
  that requests with equal settings share one ``generate`` call; ``generate_texts`` runs a
  LEFT-padded batch and decodes only the new ids.
* Log-likelihood as lm-evaluation-harness's ``loglikelihood`` for causal models
  (EleutherAI/lm-evaluation-harness ``lm_eval/models/huggingface.py``): ``split_trailing_space``
  (its ``_encode_pair`` rule), ``score_rows`` (every continuation of a batch in one RIGHT-padded
  forward pass; causal attention makes right padding exact), ``continuation_score`` (float32
  log-softmax sum and the greedy flag).
"""

from __future__ import annotations

import inspect
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

from mio_eval.checkpoints import checkpoint_dir, weights_digest
from mio_eval.errors import ConfigError
from mio_eval.types import Output

__all__ = [
    "HFAdapter",
    "Decoding",
    "SampleError",
    "ScoreRow",
    "DTYPES",
    "check_dtype",
    "torch_dtype",
    "from_pretrained",
    "config_name_or_path",
    "context_length",
    "left_pad",
    "generate_texts",
    "score_rows",
    "continuation_score",
    "split_trailing_space",
    "cut_at_stop",
    "eos_ids",
    "accepts",
]

DTYPES = ("auto", "float32", "bfloat16", "float16")
DEFAULT_MAX_LENGTH = 2048  # lm-eval's default when neither config nor tokenizer knows
DEFAULT_MAX_NEW_TOKENS = 256  # lm-eval's max_gen_toks
LOAD_ERRORS = (OSError, ValueError, KeyError, TypeError)  # what a directory transformers cannot read raises
_SEQLEN_ATTRS = ("n_positions", "max_position_embeddings", "n_ctx")  # lm-eval's order
_TOKENIZER_INFINITY = 10**20  # model_max_length of a tokenizer that does not know its limit


class SampleError(Exception):
    """One request cannot be answered; becomes ``Output.failure(str(exc))``."""


# --- loading ----------------------------------------------------------------------------------

def check_dtype(dtype: str) -> str:
    if dtype not in DTYPES:
        raise ConfigError(f"dtype must be one of {', '.join(DTYPES)}, got {dtype!r}")
    return dtype


def torch_dtype(dtype: str):
    import torch

    return "auto" if dtype == "auto" else getattr(torch, dtype)


def from_pretrained(cls: Any, path: str | Path, what: str, *, wrap: tuple[type[Exception], ...] = LOAD_ERRORS,
                    **kwargs: Any) -> Any:
    """``cls.from_pretrained(path, local_files_only=True, **kwargs)``; an exception in ``wrap`` (a
    directory it cannot load from) becomes one ConfigError line."""
    try:
        return cls.from_pretrained(str(path), local_files_only=True, **kwargs)
    except wrap as exc:
        reason = " ".join(str(exc).split())[:300] or type(exc).__name__
        raise ConfigError(f"{what}: cannot load {cls.__name__} from {path}: {reason}") from None


def config_name_or_path(directory: Path) -> str:
    """The hub name recorded in config.json when there is one, else the folder's name."""
    try:
        recorded = json.loads((directory / "config.json").read_text(encoding="utf-8")).get("_name_or_path")
    except (OSError, ValueError):
        recorded = None
    return recorded or directory.name


def context_length(config: Any, tokenizer: Any = None, override: int | None = None) -> int:
    """The model's context in tokens: ``override``, else the (text) config, else the tokenizer,
    else 2048 -- lm-eval's resolution order."""
    if override:
        return int(override)
    for cfg in (getattr(config, "text_config", None), config):
        for attr in _SEQLEN_ATTRS:
            value = getattr(cfg, attr, None) if cfg is not None else None
            if isinstance(value, int) and value > 0:
                return value
    limit = getattr(tokenizer, "model_max_length", None)
    if isinstance(limit, int) and 0 < limit < _TOKENIZER_INFINITY:
        return limit
    return DEFAULT_MAX_LENGTH


class HFAdapter:
    """The shell of a transformers adapter: knobs, offline loading, context, digest, provenance
    basics. ``load`` runs once: it checks the model directory, then calls the subclass's ``_load``
    (which uses ``_pretrained`` / ``_weights`` and ends with ``_loaded``). Subclasses implement
    ``_load``, ``generate`` and ``provenance``."""

    what = "HF model"  # names the model kind in error messages

    def __init__(self, path: str, *, name: str, dtype: str = "auto", device: str = "cpu",
                 max_length: int | None = None, trust_remote_code: bool = False) -> None:
        self.name = name
        self.path = Path(path)
        self.dtype = check_dtype(dtype)
        self.device = device
        self.max_length_override = max_length
        self.trust_remote_code = trust_remote_code
        self.model = None
        self.tokenizer = None
        self.max_length = 0
        self._digest = ""

    def load(self) -> None:
        if self.model is not None:
            return
        self._check_dir()
        self._load()

    def _load(self) -> None:
        raise NotImplementedError

    def _check_dir(self) -> None:
        checkpoint_dir(self.path, self.what)

    def _pretrained(self, cls: Any, *, wrap: tuple[type[Exception], ...] = LOAD_ERRORS, **kwargs: Any) -> Any:
        """``cls`` (tokenizer, processor, config) from the model directory, offline."""
        return from_pretrained(cls, self.path, self.what, wrap=wrap, trust_remote_code=self.trust_remote_code,
                               **kwargs)

    def _weights(self, cls: Any, *, wrap: tuple[type[Exception], ...] = LOAD_ERRORS, **kwargs: Any) -> Any:
        """The model's weights through ``cls`` in the configured dtype (not yet on ``device``)."""
        return self._pretrained(cls, wrap=wrap, dtype=torch_dtype(self.dtype), **kwargs)

    def _loaded(self, model: Any, tokenizer: Any) -> None:
        """Keep ``model`` on ``device`` in eval mode; resolve the context and digest the weights."""
        self.model = model.to(self.device).eval()
        self.max_length = context_length(self.model.config, tokenizer, self.max_length_override)
        self._digest = weights_digest(self.path)

    @property
    def loaded_dtype(self) -> str:
        """The weights' dtype once loaded (``auto`` resolved), else the configured one."""
        return str(self.model.dtype).removeprefix("torch.") if self.model is not None else self.dtype

    def _identity(self) -> dict[str, Any]:
        return {"name": self.name, "path": str(self.path),
                "name_or_path": config_name_or_path(self.path) if self.path.is_dir() else str(self.path),
                "weights_sha256": self._digest}


# --- decoding ---------------------------------------------------------------------------------

def split_trailing_space(context: str, continuation: str) -> tuple[str, str]:
    """lm-eval's ``_encode_pair`` rule: trailing whitespace of the context belongs to the
    continuation ("Answer: " + "B" is scored as "Answer:" + " B")."""
    n_spaces = len(context) - len(context.rstrip())
    if n_spaces:
        return context[:-n_spaces], context[-n_spaces:] + continuation
    return context, continuation


def eos_ids(model: Any, tokenizer: Any) -> frozenset[int]:
    """Every id that ends a generation: the generation config's (int or list) and the tokenizer's."""
    ids = getattr(getattr(model, "generation_config", None), "eos_token_id", None)
    found = set(ids if isinstance(ids, (list, tuple)) else [ids] if ids is not None else [])
    if tokenizer.eos_token_id is not None:
        found.add(tokenizer.eos_token_id)
    return frozenset(found)


def cut_at_stop(text: str, until: Iterable[str]) -> str:
    """``text`` up to the earliest occurrence of any stop string."""
    cut = len(text)
    for stop in until:
        if stop:
            at = text.find(stop)
            if at != -1:
                cut = min(cut, at)
    return text[:cut]


@dataclass(frozen=True)
class Decoding:
    """The decoding settings an HF adapter reads from ``Request.generation`` (other keys are
    ignored). Hashable: requests with equal settings share one ``generate`` call."""

    max_new_tokens: int = DEFAULT_MAX_NEW_TOKENS
    num_beams: int = 1
    do_sample: bool = False
    temperature: float | None = None
    top_p: float | None = None
    repetition_penalty: float | None = None
    until: tuple[str, ...] = ()
    seed: int | None = None
    chat: bool = False
    system: str | None = None

    @classmethod
    def of(cls, generation: Mapping[str, Any]) -> "Decoding":
        until = generation.get("until") or ()
        if isinstance(until, str):
            until = (until,)
        temperature = generation.get("temperature")
        # lm-eval: temperature 0 means greedy whatever do_sample says.
        do_sample = bool(generation.get("do_sample", False)) and temperature != 0
        try:
            return cls(
                max_new_tokens=int(generation.get("max_new_tokens") or DEFAULT_MAX_NEW_TOKENS),
                num_beams=int(generation.get("num_beams") or 1),
                do_sample=do_sample,
                temperature=None if temperature is None else float(temperature),
                top_p=None if generation.get("top_p") is None else float(generation["top_p"]),
                repetition_penalty=(None if generation.get("repetition_penalty") is None
                                    else float(generation["repetition_penalty"])),
                until=tuple(str(s) for s in until),
                seed=None if generation.get("seed") is None else int(generation["seed"]),
                chat=bool(generation.get("chat", False)),
                system=generation.get("system"),
            )
        except (TypeError, ValueError) as exc:
            raise SampleError(f"bad generation settings {dict(generation)!r}: {exc}") from None

    def generate_kwargs(self) -> dict[str, Any]:
        kwargs: dict[str, Any] = {"max_new_tokens": self.max_new_tokens, "num_beams": self.num_beams,
                                  "do_sample": self.do_sample}
        if self.do_sample:
            kwargs.update({k: v for k, v in (("temperature", self.temperature), ("top_p", self.top_p))
                           if v is not None})
        else:
            # The task's settings win over sampling defaults in the checkpoint's generation_config.
            kwargs.update(temperature=None, top_p=None, top_k=None)
        if self.repetition_penalty is not None:
            kwargs["repetition_penalty"] = self.repetition_penalty
        return kwargs

    def messages(self, content: Any) -> list[dict[str, Any]]:
        system = [{"role": "system", "content": self.system}] if self.system else []
        return [*system, {"role": "user", "content": content}]


def left_pad(prompts: Sequence[Sequence[int]], pad: int):
    """LEFT-padded ``(input_ids, attention_mask)`` LongTensors of a batch of id lists."""
    import torch

    width = max(len(ids) for ids in prompts)
    input_ids = torch.tensor([[pad] * (width - len(ids)) + list(ids) for ids in prompts], dtype=torch.long)
    mask = torch.tensor([[0] * (width - len(ids)) + [1] * len(ids) for ids in prompts], dtype=torch.long)
    return input_ids, mask


def generate_texts(model: Any, tokenizer: Any, inputs: Mapping[str, Any], settings: Decoding, *,
                   pad_id: int) -> list[tuple[str, int]]:
    """Run ``model.generate`` on a LEFT-padded batch; (text, n_new_tokens) per row, decoded from
    the new ids only, cut at the first EOS id and at the first stop string."""
    import torch

    kwargs = settings.generate_kwargs()
    if settings.until:
        kwargs.update(stop_strings=list(settings.until), tokenizer=tokenizer)
    if settings.seed is not None:
        torch.manual_seed(settings.seed)
    prompt_len = inputs["input_ids"].shape[1]
    with torch.inference_mode():
        out = model.generate(**inputs, pad_token_id=pad_id, **kwargs)
    # A row that finished early is filled with pad_id (a stop string ends it without an EOS).
    stops = eos_ids(model, tokenizer) | {pad_id}
    results = []
    for row in out[:, prompt_len:].tolist():
        end = next((i for i, t in enumerate(row) if t in stops), len(row))
        text = tokenizer.decode(row[:end], skip_special_tokens=True)
        results.append((cut_at_stop(text, settings.until), min(end + 1, len(row))))
    return results


# --- log-likelihood ---------------------------------------------------------------------------

@dataclass(frozen=True)
class ScoreRow:
    """One (request, continuation) pair to score: full ids and where the continuation starts."""

    request: int
    ids: tuple[int, ...]
    n_context: int


def continuation_score(logits: Any, start: int, cont_ids: Sequence[int]) -> tuple[float, bool]:
    """Sum of float32 log-softmax at positions ``start .. start+len-1`` (the positions that
    predict ``cont_ids``) and whether each position's arg-max is the continuation token."""
    import torch

    cont = torch.tensor(list(cont_ids), dtype=torch.long, device=logits.device)
    logprobs = torch.log_softmax(logits[start:start + len(cont)].float(), dim=-1)
    total = logprobs.gather(-1, cont.unsqueeze(-1)).sum()
    return float(total), bool((logprobs.argmax(dim=-1) == cont).all())


def accepts(model: Any, argument: str) -> bool:
    try:
        return argument in inspect.signature(model.forward).parameters
    except (TypeError, ValueError):
        return False


def score_rows(model: Any, rows: Sequence[ScoreRow], *, pad_id: int) -> dict[int, Output]:
    """All rows in one RIGHT-padded forward pass (the last token is never an input); per request
    the continuations' log-likelihoods, greedy flags and the first row's context length."""
    if not rows:
        return {}
    import torch

    width = max(len(r.ids) - 1 for r in rows)
    input_ids = torch.tensor([list(r.ids[:-1]) + [pad_id] * (width - len(r.ids) + 1) for r in rows])
    mask = torch.tensor([[1] * (len(r.ids) - 1) + [0] * (width - len(r.ids) + 1) for r in rows])
    # Only positions from the earliest continuation start on are needed: skip the others' logits.
    first = min(r.n_context - 1 for r in rows)
    kwargs = {"logits_to_keep": width - first} if accepts(model, "logits_to_keep") else {}
    offset = first if kwargs else 0
    with torch.inference_mode():
        logits = model(input_ids=input_ids.to(model.device), attention_mask=mask.to(model.device), **kwargs).logits
    scores: dict[int, list[tuple[float, bool]]] = {}
    contexts: dict[int, int] = {}
    for row, row_logits in zip(rows, logits):
        scores.setdefault(row.request, []).append(
            continuation_score(row_logits, row.n_context - 1 - offset, row.ids[row.n_context:]))
        contexts.setdefault(row.request, row.n_context)
    return {i: Output(logprobs=[s for s, _ in pairs], greedy=[g for _, g in pairs], n_input_tokens=contexts[i])
            for i, pairs in scores.items()}
