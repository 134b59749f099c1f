"""mio-eval adapters inside lmms-eval: ``lmms-eval --model mio_eval --model_args
adapter=mio_instruct,path=CKPT[,kind=vqa,key=value...] --tasks ...``.

Registered through lmms-eval's ``lmms_eval.models`` entry-point group (a ``ModelManifest``; see
``lmms_eval/models/registry_v2.py`` @ EvolvingLMMs-Lab/lmms-eval v0.7.2), so installing mio-eval
next to lmms-eval is enough. The class is lmms-eval's "simple" model (``lmms_eval.api.model.lmms``):
each ``Instance.args`` is ``(context, gen_kwargs | continuation, doc_to_visual, doc_id, task,
split)``; visuals come from ``doc_to_visual(self.task_dict[task][split][doc_id])``.

Each lmms-eval request becomes one mio-eval :class:`~mio_eval.types.Request` with the visuals first
(PIL images written once as PNG files named by their content hash; paths of videos / audio as they
are), then ``Text(context)``: exactly the parts mio-eval's own image tasks build (``{image}`` then
the question), so MIO renders the same prompt under both harnesses (tested). ``kind`` (MIO's
per-task template) comes from ``model_args`` or from the lmms-eval task name (:data:`KINDS`).
Generation settings map from ``gen_kwargs`` (``max_new_tokens``, ``num_beams``, ``temperature`` >
0 -> sampling, ``top_p``, ``until``). Log-likelihood requests become requests with one
continuation each (``Output.logprobs`` / ``greedy``).

lmms-eval has no per-sample error channel: a sample the adapter fails answers ``""`` (generation)
or ``(-inf, False)`` (log-likelihood) and is counted in ``self.errors`` with its reason, logged.

Every other ``model_args`` key is a Hydra override of the adapter's config
(``configs/model/<adapter>.yaml``): ``device=cpu``, ``dtype=float32``, ...
"""

from __future__ import annotations

import hashlib
import logging
import math
import tempfile
from pathlib import Path
from typing import Any

from lmms_eval.api.instance import Instance
from lmms_eval.api.model import lmms

from mio_eval.types import Audio, Image, Modality, Request, RequestKind, Text, Video

__all__ = ["MioEvalLMM", "manifest", "KINDS"]

logger = logging.getLogger(__name__)

# lmms-eval task-name prefix -> mio-eval request kind (MIO's prompt template family).
KINDS = {"vqav2": "vqa", "ok_vqa": "vqa", "vizwiz": "vqa", "textvqa": "vqa", "gqa": "vqa", "coco": "caption",
         "flickr": "caption", "nocaps": "caption", "seedbench": "mcq", "mmlu": "text", "librispeech": "asr",
         "msvd": "video_qa", "msrvtt": "video_qa"}
assert set(KINDS.values()) <= {k.value for k in RequestKind}
_VIDEO = (".mp4", ".avi", ".webm", ".mkv", ".mov")
_AUDIO = (".wav", ".flac", ".mp3", ".ogg")


def manifest():
    """The ``lmms_eval.models`` entry point: ``--model mio_eval``."""
    from lmms_eval.models.registry_v2 import ModelManifest

    return ModelManifest(model_id="mio_eval", simple_class_path="mio_eval.lmms_model.MioEvalLMM")


def build_adapter(adapter: str, overrides: dict[str, Any]):
    """A mio-eval adapter from its config ``configs/model/<adapter>.yaml`` plus ``model.<k>=<v>``."""
    from hydra.utils import instantiate

    from mio_eval.api import compose

    cfg = compose(["task=tts_demo", f"model={adapter}", *(f"model.{k}={v}" for k, v in overrides.items())])
    return instantiate(cfg.model, _convert_="all")


class MioEvalLMM(lmms):
    def __init__(self, adapter: str = "mio_instruct", kind: str | None = None, batch_size: int | str | None = 1,
                 media_dir: str | None = None, device: str | None = None, max_batch_size: int | None = None,
                 **model_args: Any) -> None:
        super().__init__()
        if device is not None and "device" not in model_args:   # lmms-eval's --device
            model_args["device"] = device
        self.adapter = build_adapter(adapter, model_args)
        self.kind = RequestKind(kind).value if kind else None  # an unknown kind: ValueError naming the known ones
        self.batch_size_per_gpu = int(batch_size or 1)
        self._tmp = tempfile.TemporaryDirectory(prefix="mio_eval_lmms_")
        self.media_dir = Path(media_dir) if media_dir else Path(self._tmp.name) / "media"
        self.visual_dir = Path(self._tmp.name) / "visuals"
        self.visual_dir.mkdir(parents=True, exist_ok=True)
        self.errors: list[tuple[str, str]] = []
        self.adapter.load()

    # -- requests --

    def _kind(self, task: str) -> str | None:
        if self.kind:
            return self.kind
        return next((k for prefix, k in KINDS.items() if task.startswith(prefix)), None)

    def _visual_parts(self, visuals: Any) -> list:
        from PIL import Image as PILImage

        parts = []
        for v in visuals if isinstance(visuals, (list, tuple)) else [visuals]:
            if v is None:
                continue
            if isinstance(v, PILImage.Image):
                buf = v.convert("RGB")
                digest = hashlib.sha1(buf.tobytes() + str(buf.size).encode()).hexdigest()[:20]
                path = self.visual_dir / f"{digest}.png"
                if not path.is_file():
                    buf.save(path, format="PNG")   # lossless: the adapter reads the same pixels
                parts.append(Image(str(path)))
            elif isinstance(v, str):
                suffix = Path(v).suffix.lower()
                parts.append(Video(v) if suffix in _VIDEO else Audio(v) if suffix in _AUDIO else Image(v))
            elif isinstance(v, dict) and "array" in v and "sampling_rate" in v:   # HF audio
                from mio_eval.media import save_audio

                import numpy as np

                samples = np.asarray(v["array"], dtype=np.float32)
                path = self.visual_dir / f"{hashlib.sha1(samples.tobytes()).hexdigest()[:20]}.wav"
                if not path.is_file():
                    save_audio(path, samples, int(v["sampling_rate"]))
                parts.append(Audio(str(path), sample_rate=int(v["sampling_rate"])))
            else:
                raise TypeError(f"unsupported visual of type {type(v).__name__}")
        return parts

    def to_request(self, instance: Instance, *, loglikelihood: bool) -> Request:
        """The mio-eval request for one lmms-eval instance (visuals first, then the context)."""
        context, second, doc_to_visual, doc_id, task, split = instance.args
        doc = self.task_dict[task][split][doc_id]
        parts = [*self._visual_parts(doc_to_visual(doc) if doc_to_visual is not None else []), Text(context)]
        if loglikelihood:
            continuation = second if isinstance(second, str) else second(doc)
            return Request(sample_id=f"{task}/{doc_id}", parts=tuple(parts), output_modality=Modality.TEXT,
                           continuations=(continuation,), kind=self._kind(task))
        gen = dict(second or {})
        generation = {"max_new_tokens": int(gen.get("max_new_tokens", 128)), "num_beams": int(gen.get("num_beams", 1))}
        temperature = float(gen.get("temperature") or 0)
        generation["do_sample"] = bool(gen.get("do_sample", temperature > 0))
        if generation["do_sample"]:
            generation["temperature"] = temperature
            if gen.get("top_p") is not None:
                generation["top_p"] = float(gen["top_p"])
        until = gen.get("until")
        if until:
            generation["until"] = [until] if isinstance(until, str) else list(until)
        return Request(sample_id=f"{task}/{doc_id}", parts=tuple(parts), output_modality=Modality.TEXT,
                       generation=generation, kind=self._kind(task))

    # -- lmms-eval API --

    def generate_until(self, requests: list[Instance]) -> list[str]:
        mio_requests = [self.to_request(r, loglikelihood=False) for r in requests]
        answers = []
        for request, out in zip(mio_requests, self._generate(mio_requests)):
            if out.error is not None:
                self.errors.append((request.sample_id, out.error))
                logger.warning("mio_eval: %s failed: %s", request.sample_id, out.error)
            text = out.text or ""
            for stop in request.generation.get("until") or ():
                text = text.split(stop)[0] if stop else text
            answers.append(text)
        return answers

    def _generate(self, requests: list[Request]) -> list:
        """One ``Output`` per request through mio-eval's shared batched call (per-request retry, the
        adapter's answer count checked), so a failing batch costs only its failing requests."""
        from mio_eval.batching import generate_batches

        return generate_batches(self.adapter, requests, media_dir=self.media_dir, batch_size=self.batch_size_per_gpu)

    def loglikelihood(self, requests: list[Instance]) -> list:
        """One ``(loglikelihood, is_greedy)`` per instance. lmms-eval 0.7's evaluator passes every
        output through ``unwrap_generation_output``, which turns a plain tuple into its ``str``
        (and ``multiple_choice`` scoring then fails on the string); a ``GenerationResult`` holding
        the tuple comes through unchanged, so pairs are wrapped in one where that class exists."""
        pairs = self._loglikelihood(requests)
        try:
            from lmms_eval.api.instance import GenerationResult, unwrap_generation_output
        except ImportError:   # lmms-eval < 0.7: tuples pass as they are
            return pairs
        if isinstance(unwrap_generation_output(pairs[0])[0], tuple) if pairs else True:
            return pairs
        return [GenerationResult(text=pair) for pair in pairs]

    def _loglikelihood(self, requests: list[Instance]) -> list[tuple[float, bool]]:
        mio_requests = [self.to_request(r, loglikelihood=True) for r in requests]
        results = []
        for request, out in zip(mio_requests, self._generate(mio_requests)):
            if out.error is not None or not out.logprobs:
                self.errors.append((request.sample_id, out.error or "no log-likelihood"))
                logger.warning("mio_eval: %s failed: %s", request.sample_id, out.error)
                results.append((-math.inf, False))
            else:
                results.append((float(out.logprobs[0]), bool(out.greedy[0]) if out.greedy else False))
        return results

    def generate_until_multi_round(self, requests) -> list[str]:
        raise NotImplementedError("mio_eval: multi-round generation is not bridged")
