"""MME-Unify unify tasks (aba122/MME-Unify @ 0956091 ``evaluate/Evaluate_{IEE,CSQ,AL,SD,VSP}.py``).

IEE, CSQ, AL, SD: a text answer (letter by the shared multiple-choice letter rule, default
``ExtractChoice``; IEE's explanation -> nearest option by CLIP text embedding, as ``Evaluate_IEE.py``)
and a generated image judged by the nearest of 4 candidate images under CLIP ViT-B/32 (correct = the
ground truth is nearest); text / image / combined accuracy. VCoT: one request per maze step, action /
location / image accuracy (image = nearest of the item's step images is this step's). The scores
and Unify-S are the benchmark's rules in :mod:`mio_eval.metrics.mme_unify`; ``unify_score`` and
``vcot_denominator`` pick them by ``_target_``.

**Reference quirks.** IEE options are listed in shuffled label order ("D: ...", "C: ...") but the
reference maps the nearest option's list *position* to a letter; we read the option's own label
(``iee_text_label: {_target_: ...unify.ListPosition}`` replicates). VCoT's reference divides every
step's correct count by N items x the longest walk (steps a walk does not have count as wrong) and
can never score the final "Finish" step's image (there is no image for it);
``metrics.mme_unify.OfficialDenominator`` replicates, the default ``StepsDenominator`` counts the steps
that exist (the image aspect over steps that have an image). The VCoT history is teacher-forced
(previous ground-truth actions, the initial and current map): the official multi-turn driver is not
published (UNVERIFIED).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, ClassVar, Mapping, Sequence

import numpy as np

from mio_eval.errors import ConfigError, MediaError
from mio_eval.generation import generation_settings
from mio_eval.metrics.base import MetricResult
from mio_eval.metrics.mme_unify import (NORMALIZATION, MeanTextImage, StepsDenominator, family_partial,
                                        unify_task_metrics, vcot_metrics)
from mio_eval.tasks.base import Generated, InvalidOutput, ScoreReport
from mio_eval.tasks.loaders.mme_unify import UNIFY_SUBTASKS
from mio_eval.tasks.mme_unify.common import build_prompts, export_submission, first_media
from mio_eval.tasks.multiple_choice import ExtractChoice, LetterRule, check_rule
from mio_eval.types import Image, Modality, Output, Request, Sample, Text

__all__ = ["MMEUnifyUnifyTask", "parse_vcot", "ChoiceLabel", "ListPosition"]


class ChoiceLabel:
    """IEE: the nearest option's own label ("D: ..." -> D)."""

    name = "choice_label"

    def __call__(self, index: int, labels: Sequence[str]) -> str:
        return labels[index]


class ListPosition:
    """IEE as the reference: the nearest option's list position as a letter (its bug: the options
    are listed in shuffled label order)."""

    name = "position"

    def __call__(self, index: int, labels: Sequence[str]) -> str:
        return "ABCDEFGH"[index]


_ACTION = re.compile(r"(?i)\baction\s*[:：]?\s*\**\s*\[?\s*(left|right|up|down|finish)\b")
_ANY_ACTION = re.compile(r"(?i)\b(left|right|up|down|finish)\b")
_LOCATION = re.compile(r"(?i)location\s*[:：]?\s*\**\s*[\[(]\s*(-?\d+)\s*,\s*(-?\d+)\s*[\])]")
_EXPLANATION = re.compile(r"(?is)explanation\s*[:：]\s*(.*)")


def parse_vcot(text: str) -> tuple[str | None, list[int] | None]:
    """``"Action: Down\\nLocation: [3, 3]"`` -> ``("Down", [3, 3])``; without the ``Action:``
    label, a single move word in the reply is taken; several different ones -> ``None``.

    >>> parse_vcot("Action: down\\nLocation: [3, 3]\\nImage: ..."), parse_vcot("Left or Up?")
    (('Down', [3, 3]), (None, None))
    """
    match = _ACTION.search(text)
    if match:
        action = match.group(1).capitalize()
    else:
        words = {w.capitalize() for w in _ANY_ACTION.findall(text)}
        action = words.pop() if len(words) == 1 else None
    loc = _LOCATION.search(text)
    return action, ([int(loc.group(1)), int(loc.group(2))] if loc else None)


class MMEUnifyUnifyTask:
    """IEE / CSQ / AL / SD (text + image answers) and VCoT (maze steps); Unify-S."""

    output_modality = Modality.IMAGE
    input_modalities = frozenset({Modality.TEXT, Modality.IMAGE})
    scoring_keys: ClassVar[tuple[str, ...]] = ("clip", "unify_score", "iee_text_label", "vcot_denominator", "export",
                                               "letter_rule")

    def __init__(self, *, name: str, loader, clip=None, prompts_file: str | None = None,
                 prompts: Mapping[str, str] | None = None, generation: Mapping[str, Any] | None = None,
                 unify_score=None, iee_text_label=None, vcot_denominator=None, export: bool = True,
                 letter_rule: LetterRule | None = None) -> None:
        unify_score = MeanTextImage() if unify_score is None else unify_score
        iee_text_label = ChoiceLabel() if iee_text_label is None else iee_text_label
        vcot_denominator = StepsDenominator() if vcot_denominator is None else vcot_denominator
        for key, value, where in (("unify_score", unify_score, "metrics.mme_unify.MeanTextImage or Accuracy"),
                                  ("iee_text_label", iee_text_label,
                                   "tasks.mme_unify.unify.ChoiceLabel or ListPosition"),
                                  ("vcot_denominator", vcot_denominator,
                                   "metrics.mme_unify.StepsDenominator or OfficialDenominator")):
            if not callable(value) or not isinstance(getattr(value, "name", None), str):
                raise ConfigError(f"task.{key} must be a rule given by _target_ (mio_eval.{where}), got {value!r}")
        self.letter_rule = check_rule(ExtractChoice() if letter_rule is None else letter_rule)
        self.name = name
        self.loader = loader
        self.subtasks = tuple(getattr(loader, "subtasks", tuple(UNIFY_SUBTASKS)))
        self.clip = clip
        self.prompts = build_prompts(prompts_file, prompts)
        self.generation = generation_settings(generation)
        self.unify_score, self.iee_text_label, self.vcot_denominator = unify_score, iee_text_label, vcot_denominator
        self.export = export

    def preflight(self) -> None:
        if self.clip is None:
            raise ConfigError(f"task {self.name}: task.clip (CLIP ViT-B/32 in the reference) is required to score")
        self.clip.load()

    def samples(self) -> list[Sample]:
        return self.loader()

    def request(self, sample: Sample) -> Request:
        meta = sample.metadata
        code = meta["subtask"]
        if code == "VCoT":
            if meta["step"] == 0:
                parts = (Text(self.prompts["VCoT_first"] + "\nInitial map:"), *sample.parts)
            else:
                history = ", ".join(meta["history"])
                initial, current = sample.parts
                parts = (Text(self.prompts["VCoT_next"] + "\nInitial map:"), initial,
                         Text(f"\nActions so far: {history}. Current map:"), current)
        else:
            options = "\n".join(meta["options"])
            parts = (Text(self.prompts[code] + "\n"), *sample.parts, Text("\n" + options))
        return Request(sample_id=sample.id, parts=parts, output_modality=Modality.IMAGE, generation=self.generation)

    def prediction(self, sample: Sample, output: Output) -> dict[str, Any]:
        text = output.text or ""
        image = first_media(output, Image)
        if not text and image is None:
            raise InvalidOutput("expected a text answer and/or an image, got nothing")
        code = sample.metadata["subtask"]
        pred: dict[str, Any] = {"text": text, "has_image": image is not None}
        if code == "VCoT":
            pred["action"], pred["location"] = parse_vcot(text)
        elif code == "IEE":
            match = _EXPLANATION.search(text)
            pred["explanation"] = (match.group(1) if match else text).strip()
        else:
            index = self.letter_rule(text, sample.choices) if text else None
            pred["choice"] = sample.metadata["labels"][index] if index is not None else None
        return pred

    def _nearest_image(self, image: str, candidates: Sequence[str]) -> int:
        from mio_eval.metrics.clip_score import cosine_rows
        from mio_eval.metrics.image_quality import load_rgb

        pics = [load_rgb(p) for p in (image, *candidates)]
        feats = self.clip.encode_images(pics)
        sims = cosine_rows(np.repeat(feats[:1], len(candidates), axis=0), feats[1:])
        return int(np.argmax(sims))  # first maximum, as max(dict) / index(max) in the reference

    def _iee_text(self, explanation: str, meta: Mapping[str, Any]) -> str | None:
        from mio_eval.metrics.clip_score import cosine_rows

        if not explanation:
            return None
        feats = self.clip.encode_texts([explanation, *meta["options"]])
        sims = cosine_rows(np.repeat(feats[:1], len(meta["options"]), axis=0), feats[1:])
        best = int(np.argmax(sims))
        return self.iee_text_label(best, meta["labels"])

    def score(self, generated: Sequence[Generated], *, work_dir: Path) -> ScoreReport:
        rows, exported = [], {}
        for g in generated:
            meta = g.sample.metadata
            code = meta["subtask"]
            export_key = meta.get("item_id", g.sample.id)
            if code == "VCoT":
                exported.setdefault(export_key, {**dict(meta["item"]), "outputs": {}})
            if g.error is not None:
                rows.append({"id": g.sample.id, "error": g.error, "stage": "generate", "subtask": code,
                             **({"step": meta["step"]} if code == "VCoT" else {})})
                if code != "VCoT":
                    exported[export_key] = {**dict(meta["item"]), "output": None, "error": g.error}
                continue
            image = first_media(g.output, Image)
            pred = g.prediction
            try:
                row = self._score_one(code, meta, pred, image, g.sample)
            except MediaError as exc:
                rows.append({"id": g.sample.id, "error": f"score: {exc}", "stage": "score", "subtask": code})
                continue
            rows.append({"id": g.sample.id, "error": None, "subtask": code, **row})
            item = dict(meta["item"])
            if code == "VCoT":
                exported[export_key]["outputs"][f"output_step_{meta['step']}"] = {
                    "output_action": pred["action"], "output_location": pred["location"], "output_image": image,
                    "full_text": pred["text"]}
            elif code == "IEE":
                exported[export_key] = {**item, "output": {"output_explanation": pred["explanation"], "output_image": image}}
            elif code == "SD":
                exported[export_key] = {**item, "output": {"selected_answer": pred["choice"] or "",
                                                           "difference_image": image, "explanation": pred["text"]}}
            else:
                # "" when no letter was read: Evaluate_CS.py's `answer in output_choice` raises on None
                exported[export_key] = {**item, "output": {"output_choice": pred["choice"] or "", "output_image": image}}
        metrics = self._aggregate(rows, generated)
        settings: dict[str, Any] = {"unify_score": self.unify_score.name, "iee_text_label": self.iee_text_label.name,
                                    "vcot_denominator": self.vcot_denominator.name, "normalization": NORMALIZATION,
                                    "vcot_history": "teacher-forced (ground-truth previous actions and maps)"}
        artifacts = export_submission("unify", list(exported.values()), settings) if self.export else {}
        judges = (dict(self.clip.provenance()),) if self.clip is not None else ()
        return ScoreReport(metrics=tuple(metrics), per_sample=tuple(rows), judges=judges, settings=settings,
                           artifacts=artifacts)

    def _score_one(self, code, meta, pred, image, sample) -> dict[str, Any]:
        if code == "VCoT":
            target = meta["image_target"]
            image_ok = None
            if target is not None:
                image_ok = image is not None and self._nearest_image(image, meta["candidates"]) == target
            return {"step": meta["step"], "item": meta["item_id"], "n_steps": meta["n_steps"],
                    "action": pred["action"] == sample.targets[0],
                    "location": pred["location"] is not None and pred["location"] == meta["location"],
                    "image": image_ok}
        text_choice = self._iee_text(pred["explanation"], meta) if code == "IEE" else pred["choice"]
        text_ok = text_choice == sample.targets[0]
        image_ok = image is not None and self._nearest_image(image, meta["candidates"]) == 0
        return {"choice": text_choice, "answer": sample.targets[0], "text": text_ok, "image": image_ok,
                "combined": text_ok and image_ok}


    def _aggregate(self, rows: list[dict[str, Any]], generated: Sequence[Generated]) -> list[MetricResult]:
        metrics: list[MetricResult] = []
        for code in self.subtasks:
            total = [g for g in generated if g.sample.metadata["subtask"] == code]
            if not total:
                continue
            ok = [r for r in rows if r["subtask"] == code and not r["error"]]
            if code == "VCoT":
                metrics.extend(vcot_metrics(ok, [g.sample.metadata for g in total], denominator=self.vcot_denominator))
            else:
                metrics.extend(unify_task_metrics(code, ok, len(total), rule=self.unify_score))
        metrics.append(family_partial("Unify_partial", metrics,
                                      provenance="mean of this run's unify task scores (Unify-S when all five ran)",
                                      complete=set(self.subtasks) == set(UNIFY_SUBTASKS)))
        return metrics
