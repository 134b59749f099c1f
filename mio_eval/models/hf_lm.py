"""A Hugging Face causal language model (``AutoModelForCausalLM``) from a local directory.

Generation: prompts are tokenised one by one, LEFT-padded into one batch per distinct set of
decoding settings, and only the generated ids (after the prompt) are decoded, cut at the first
end-of-sequence id and then at the first ``until`` stop string.

Log-likelihood (``Request.continuations``) follows lm-evaluation-harness's ``loglikelihood`` for
causal models: trailing whitespace moves from the context to the continuation, ``context +
continuation`` is encoded whole and the continuation tokens are what follows the encoded
context; an empty context is replaced by the BOS (else EOS) token. Every continuation of every
request in a batch goes through one RIGHT-padded forward pass (causal attention makes right
padding exact), log-softmax in float32, and ``greedy`` says whether the arg-max at every
continuation position is the continuation token. Unlike lm-eval, a sequence longer than the
model's context is a per-sample error, never left-truncated.

BOS: ``add_bos=None`` adds it exactly when the tokenizer does by default (Llama, Gemma yes;
GPT-2, Qwen no), so the defaults reproduce lm-eval's ids; a text that already starts with the
BOS string (a chat template that writes it) never gets a second one.
"""

from __future__ import annotations

import hashlib
import inspect
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

from mio_eval.errors import ConfigError
from mio_eval.models.whisper_asr import file_digest
from mio_eval.types import Modality, Output, Request, Text

__all__ = [
    "HFCausalLM",
    "Decoding",
    "DTYPES",
    "check_model_dir",
    "context_length",
    "continuation_score",
    "eos_ids",
    "generate_texts",
    "split_trailing_space",
    "weights_digest",
]

DTYPES = ("auto", "float32", "bfloat16", "float16")
DEFAULT_MAX_LENGTH = 2048  # lm-eval's default when neither config nor tokenizer knows
DEFAULT_MAX_NEW_TOKENS = 256  # lm-eval's max_gen_toks
_SEQLEN_ATTRS = ("n_positions", "max_position_embeddings", "n_ctx")  # lm-eval's order
_TOKENIZER_INFINITY = 10**20  # model_max_length of a tokenizer that does not know its limit
_WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth", ".gguf")


class SampleError(Exception):
    """One request cannot be answered; becomes ``Output.failure(str(exc))``."""


# --- helpers shared with hf_vlm ---------------------------------------------------------------

def check_model_dir(path: Path, what: str) -> None:
    if not path.is_dir():
        raise ConfigError(f"{what} directory not found: {path} (a local save_pretrained folder is needed)")
    if not (path / "config.json").is_file():
        raise ConfigError(f"{what} directory has no config.json: {path}")


def check_dtype(dtype: str) -> str:
    if dtype not in DTYPES:
        raise ConfigError(f"dtype must be one of {', '.join(DTYPES)}, got {dtype!r}")
    return dtype


def torch_dtype(dtype: str):
    import torch

    return "auto" if dtype == "auto" else getattr(torch, dtype)


def weights_digest(directory: Path, *, chars: int = 16) -> str:
    """sha256 over (file name, file sha256) of every weight file in ``directory``, name-sorted."""
    digest = hashlib.sha256()
    for path in sorted(p for p in directory.iterdir() if p.is_file() and p.name.endswith(_WEIGHT_SUFFIXES)):
        digest.update(f"{path.name}\0{file_digest(path, chars=64)}\n".encode())
    return digest.hexdigest()[:chars]


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


# --- the adapter ------------------------------------------------------------------------------

@dataclass(frozen=True)
class _Row:
    """One (request, continuation) pair to score: full ids and where the continuation starts."""

    request: int
    ids: tuple[int, ...]
    n_context: int


class HFCausalLM:
    """A local ``AutoModelForCausalLM`` checkpoint: text in, text out, continuations scored."""

    inputs = frozenset({Modality.TEXT})
    outputs = frozenset({Modality.TEXT})
    supports_loglikelihood = True

    def __init__(
        self,
        path: str,
        *,
        name: str = "hf_lm",
        dtype: str = "auto",
        device: str = "cpu",
        max_length: int | None = None,
        add_bos: bool | None = None,
        trust_remote_code: bool = False,
    ) -> None:
        self.name = name
        self.path = Path(path)
        self.dtype = check_dtype(dtype)
        self.device = device
        self.max_length_override = max_length
        self.add_bos = add_bos
        self.trust_remote_code = trust_remote_code
        self.model = None
        self.tokenizer = None
        self.max_length = 0
        self._add_bos = False
        self._digest = ""

    # -- loading --

    def load(self) -> None:
        if self.model is not None:
            return
        check_model_dir(self.path, "HF causal LM")
        from transformers import AutoModelForCausalLM, AutoTokenizer

        self.tokenizer = AutoTokenizer.from_pretrained(
            self.path, local_files_only=True, trust_remote_code=self.trust_remote_code)
        model = AutoModelForCausalLM.from_pretrained(
            self.path, dtype=torch_dtype(self.dtype), local_files_only=True,
            trust_remote_code=self.trust_remote_code)
        self.model = model.to(self.device).eval()
        self.max_length = context_length(self.model.config, self.tokenizer, self.max_length_override)
        bos = self.tokenizer.bos_token_id
        if self.add_bos is None:
            # Does the tokenizer put BOS first by default? (what lm-eval's plain encode does)
            default = self.tokenizer.encode("a")
            plain = self.tokenizer.encode("a", add_special_tokens=False)
            self._add_bos = bos is not None and default[:1] == [bos] and plain[:1] != [bos]
        else:
            if self.add_bos and bos is None:
                raise ConfigError(f"add_bos=true but the tokenizer of {self.path} has no BOS token")
            self._add_bos = bool(self.add_bos)
        self._digest = weights_digest(self.path)

    @property
    def _pad_id(self) -> int:
        tok = self.tokenizer
        for candidate in (tok.pad_token_id, tok.eos_token_id):
            if candidate is not None:
                return candidate
        return 0

    @property
    def _prefix_id(self) -> int:
        """lm-eval's stand-in context for an empty prompt: BOS, else EOS."""
        tok = self.tokenizer
        return tok.bos_token_id if tok.bos_token_id is not None else tok.eos_token_id

    def _encode(self, text: str) -> list[int]:
        ids = self.tokenizer.encode(text, add_special_tokens=False)
        bos_text = self.tokenizer.bos_token
        if self._add_bos and not (bos_text and text.startswith(bos_text)):
            ids = [self.tokenizer.bos_token_id, *ids]
        return ids

    def _prompt(self, request: Request, settings: Decoding) -> str:
        other = sorted({p.modality.value for p in request.parts if not isinstance(p, Text)})
        if other:
            raise SampleError(f"{self.name}: a text-only model cannot read {', '.join(other)} parts")
        if not settings.chat:
            return request.text
        if not getattr(self.tokenizer, "chat_template", None):
            raise SampleError(f"{self.name}: generation.chat is set but the tokenizer has no chat template")
        return self.tokenizer.apply_chat_template(settings.messages(request.text), tokenize=False,
                                                  add_generation_prompt=True)

    # -- answering --

    def generate(self, requests: Sequence[Request], *, media_dir: Path) -> list[Output]:
        self.load()
        outputs: list[Output | None] = [None] * len(requests)
        groups: dict[Decoding, list[tuple[int, list[int]]]] = {}
        rows: list[_Row] = []
        for i, request in enumerate(requests):
            try:
                settings = Decoding.of(request.generation)
                prompt = self._prompt(request, settings)
                if request.continuations:
                    rows.extend(self._rows(i, prompt, request.continuations))
                else:
                    ids = self._encode(prompt)
                    if len(ids) + settings.max_new_tokens > self.max_length:
                        raise SampleError(
                            f"prompt is {len(ids)} tokens; with max_new_tokens={settings.max_new_tokens} it "
                            f"exceeds the model's context of {self.max_length} tokens")
                    groups.setdefault(settings, []).append((i, ids))
            except SampleError as exc:
                outputs[i] = Output.failure(str(exc))
        for settings, members in groups.items():
            for (i, ids), (text, n_new) in zip(members, self._generate_ids([ids for _, ids in members], settings)):
                outputs[i] = Output(text=text, n_input_tokens=len(ids), n_output_tokens=n_new)
        for i, output in self._score([r for r in rows if outputs[r.request] is None]).items():
            outputs[i] = output
        return outputs  # type: ignore[return-value]

    def _generate_ids(self, prompts: list[list[int]], settings: Decoding) -> list[tuple[str, int]]:
        import torch

        width = max(len(ids) for ids in prompts)
        pad = self._pad_id
        input_ids = torch.tensor([[pad] * (width - len(ids)) + ids for ids in prompts], dtype=torch.long)
        mask = torch.tensor([[0] * (width - len(ids)) + [1] * len(ids) for ids in prompts], dtype=torch.long)
        inputs = {"input_ids": input_ids.to(self.model.device), "attention_mask": mask.to(self.model.device)}
        return generate_texts(self.model, self.tokenizer, inputs, settings, pad_id=pad)

    def _rows(self, i: int, prompt: str, continuations: Sequence[str]) -> list[_Row]:
        rows = []
        for j, continuation in enumerate(continuations):
            if prompt == "":
                cont = self.tokenizer.encode(continuation, add_special_tokens=False)
                context = [self._prefix_id] if cont[:1] != [self._prefix_id] else cont[:1]
                cont = cont if cont[:1] != [self._prefix_id] else cont[1:]
            else:
                ctx_text, cont_text = split_trailing_space(prompt, continuation)
                context = self._encode(ctx_text)
                cont = self._encode(ctx_text + cont_text)[len(context):]
            if not cont:
                raise SampleError(f"continuation {j} ({continuation!r}) encodes to no tokens")
            if len(context) + len(cont) - 1 > self.max_length:
                raise SampleError(
                    f"context ({len(context)} tokens) + continuation {j} ({len(cont)} tokens) exceeds the "
                    f"model's context of {self.max_length} tokens")
            rows.append(_Row(i, tuple(context + cont), len(context)))
        return rows

    def _score(self, rows: list[_Row]) -> dict[int, Output]:
        """All rows in one right-padded forward pass (the last token is never an input)."""
        if not rows:
            return {}
        import torch

        width = max(len(r.ids) - 1 for r in rows)
        pad = self._pad_id
        input_ids = torch.tensor([list(r.ids[:-1]) + [pad] * (width - len(r.ids) + 1) for r in rows])
        mask = torch.tensor([[1] * (len(r.ids) - 1) + [0] * (width - len(r.ids) + 1) for r in rows])
        # Only positions from the earliest continuation start on are needed: skip the others' logits.
        first = min(r.n_context - 1 for r in rows)
        kwargs = {"logits_to_keep": width - first} if accepts(self.model, "logits_to_keep") else {}
        offset = first if kwargs else 0
        with torch.inference_mode():
            logits = self.model(input_ids=input_ids.to(self.model.device),
                                attention_mask=mask.to(self.model.device), **kwargs).logits
        scores: dict[int, list[tuple[float, bool]]] = {}
        for row, row_logits in zip(rows, logits):
            scores.setdefault(row.request, []).append(
                continuation_score(row_logits, row.n_context - 1 - offset, row.ids[row.n_context:]))
        return {i: Output(logprobs=[s for s, _ in pairs], greedy=[g for _, g in pairs],
                          n_input_tokens=next(r.n_context for r in rows if r.request == i))
                for i, pairs in scores.items()}

    def provenance(self) -> Mapping[str, Any]:
        from importlib.metadata import version

        return {
            "model": "transformers AutoModelForCausalLM",
            "name": self.name,
            "path": str(self.path),
            "name_or_path": config_name_or_path(self.path) if self.path.is_dir() else str(self.path),
            "weights_sha256": self._digest,
            "class": type(self.model).__name__ if self.model is not None else None,
            "dtype": str(self.model.dtype).removeprefix("torch.") if self.model is not None else self.dtype,
            "max_length": self.max_length,
            "add_bos": self._add_bos,
            "transformers": version("transformers"),
        }
