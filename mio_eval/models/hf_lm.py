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

from pathlib import Path
from typing import Any, Mapping, Sequence

from mio_eval.errors import ConfigError
from mio_eval.models.hf_base import (
    Decoding,
    HFAdapter,
    SampleError,
    ScoreRow,
    generate_texts,
    left_pad,
    score_rows,
    split_trailing_space,
)
from mio_eval.types import Modality, Output, Request, Text

__all__ = ["HFCausalLM"]


class HFCausalLM(HFAdapter):
    """A local ``AutoModelForCausalLM`` checkpoint: text in, text out, continuations scored."""

    inputs = frozenset({Modality.TEXT})
    outputs = frozenset({Modality.TEXT})
    supports_loglikelihood = True
    what = "HF causal LM"

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
    ) -> None:  # knobs spelled out (not **kwargs): the signature is the YAML's contract
        super().__init__(path, name=name, dtype=dtype, device=device, max_length=max_length,
                         trust_remote_code=trust_remote_code)
        self.add_bos = add_bos
        self._add_bos = False

    # -- loading --

    def _load(self) -> None:
        from transformers import AutoModelForCausalLM, AutoTokenizer

        self.tokenizer = self._pretrained(AutoTokenizer)
        self._loaded(self._weights(AutoModelForCausalLM), self.tokenizer)
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
        rows: list[ScoreRow] = []
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
        input_ids, mask = left_pad(prompts, self._pad_id)
        inputs = {"input_ids": input_ids.to(self.model.device), "attention_mask": mask.to(self.model.device)}
        return generate_texts(self.model, self.tokenizer, inputs, settings, pad_id=self._pad_id)

    def _rows(self, i: int, prompt: str, continuations: Sequence[str]) -> list[ScoreRow]:
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
            rows.append(ScoreRow(i, tuple(context + cont), len(context)))
        return rows

    def _score(self, rows: list[ScoreRow]) -> dict[int, Output]:
        return score_rows(self.model, rows, pad_id=self._pad_id)

    def provenance(self) -> Mapping[str, Any]:
        from importlib.metadata import version

        return {
            "model": "transformers AutoModelForCausalLM",
            **self._identity(),
            "class": type(self.model).__name__ if self.model is not None else None,
            "dtype": self.loaded_dtype,
            "max_length": self.max_length,
            "add_bos": self._add_bos,
            "transformers": version("transformers"),
        }
