"""Open-ended video QA (MSVD-QA, MSRVTT-QA; MIO Table 6): exact-match top-1 accuracy.

MIO's Table 6 and the baselines it copies (Flamingo, BLIP-2, InstructBLIP, Emu, SEED-LLaMA) report
the classic exact-match accuracy, not the Video-ChatGPT GPT judge (MIO paper, arXiv 2409.17692,
Table 6, copies the baselines' published exact-match numbers, e.g. BLIP-2 33.7 / 16.2). The exact
normalisation is UNVERIFIED; two variants are reported side by side, both with the official VQA
rules (``processPunctuation`` + ``processDigitArticle``, :func:`mio_eval.metrics.vqa.vqa_normalize`
``variant="vqa2016"``, as LAVIS copies them):

* ``accuracy`` (default, ``vqa_both``): prediction and ground truth normalised, then equal;
* ``accuracy_lavis`` (``lavis_pred_only``): LAVIS ``GQATask._report_metrics``: the prediction
  normalised, the ground truth as stored. They differ on counting answers: ``"two"`` vs ``two``
  is 1 under ``vqa_both`` but 0 under LAVIS (the prediction becomes ``2``).

Exact match, never containment (``"the man is cooking"`` vs ``cooking`` is 0). Both are broken
down per question type (first word: what / who / how / when / where / other) and, for MSRVTT-QA,
per ``category_id`` (the release's field; its meaning is not documented: reported as is).

**Judge (optional, only with ``judge`` set in the config).** Video-ChatGPT
``quantitative_evaluation/evaluate_activitynet_qa.py`` @ 659e04b: the judge model (any adapter
that writes text; the reference uses gpt-3.5-turbo) gets the reference's system instructions and
its user message with Question / Correct Answer / Predicted Answer, and must answer a Python dict
``{'pred': 'yes'|'no', 'score': 0-5}``; ``judge_accuracy`` = yes / (yes + no) (substring test
as the reference), ``judge_score`` = mean ``int(score)``. Our adapters take no system turn, so the
system text is placed before the user message (recorded). Unparsable replies are counted
(``judge_invalid``) and left out, as the reference (which retries them) never scores them. A
judge batch that fails (or answers another number of replies) is retried request by request
(``mio_eval.batching``), so a failed call costs one sample, never its batch. The judge's
provenance is recorded in ``judges``; its replies go to ``<run dir>/scoring/judge.jsonl``.
"""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path
from typing import Any, Callable, ClassVar, Mapping, Sequence

import numpy as np

from mio_eval.atomic import atomic_write_text
from mio_eval.batching import generate_batches
from mio_eval.errors import ConfigError
from mio_eval.generation import generation_settings
from mio_eval.metrics.base import MetricResult
from mio_eval.metrics.vqa import vqa_normalize
from mio_eval.progress import progress
from mio_eval.tasks.base import Generated, InvalidOutput, ScoreReport, TaskBase
from mio_eval.types import Image, Modality, Output, Request, Sample, Text, Video

__all__ = ["VideoQATask", "exact_match", "parse_judge_reply", "judge_prompt", "MIO_VIDEO_QA_PROMPT",
           "MATCH_VARIANTS"]

# MIO paper Table 12 (instruction-tuned evaluation), video QA.
MIO_VIDEO_QA_PROMPT = ("The goal is to use the visual information available in the image to provide an accurate "
                       "answer to the question. This requires careful observation, attention to detail, and "
                       "sometimes a bit of creative thinking.{video} Question: {question} Answer:")
MATCH_VARIANTS = {
    "vqa_both": "official VQA processPunctuation + processDigitArticle on prediction and answer, then ==",
    "lavis_pred_only": "LAVIS GQATask._report_metrics: VQA normalisation on the prediction only, answer as stored",
}
JUDGE_SYSTEM = (
    "You are an intelligent chatbot designed for evaluating the correctness of generative outputs for question-answer "
    "pairs. Your task is to compare the predicted answer with the correct answer and determine if they match "
    "meaningfully. Here's how you can accomplish the task:------##INSTRUCTIONS: - Focus on the meaningful match "
    "between the predicted answer and the correct answer.\n- Consider synonyms or paraphrases as valid matches.\n"
    "- Evaluate the correctness of the prediction compared to the answer.")
JUDGE_USER = (
    "Please evaluate the following video-based question-answer pair:\n\nQuestion: {question}\n"
    "Correct Answer: {answer}\nPredicted Answer: {pred}\n\n"
    "Provide your evaluation only as a yes/no and score where the score is an integer value between 0 and 5, "
    "with 5 indicating the highest meaningful match. Please generate the response in the form of a "
    "Python dictionary string with keys 'pred' and 'score', where value of 'pred' is  a string of 'yes' or 'no' and "
    "value of 'score' is in INTEGER, not STRING.DO NOT PROVIDE ANY OTHER OUTPUT TEXT OR EXPLANATION. Only provide the "
    "Python dictionary string. For example, your response should look like this: {{'pred': 'yes', 'score': 4.8}}.")
_DICT = re.compile(r"\{[^{}]*\}")


def exact_match(prediction: str, answer: str, *, variant: str = "vqa_both") -> bool:
    """Exact match after normalisation (see module doc).

    >>> exact_match("A dog.", "dog"), exact_match("two", "two"), exact_match("two", "two", variant="lavis_pred_only")
    (True, True, False)
    >>> exact_match("the man is cooking", "cooking")
    False
    """
    if variant not in MATCH_VARIANTS:
        raise ValueError(f"match variant must be one of {', '.join(MATCH_VARIANTS)}, got {variant!r}")
    pred = vqa_normalize(prediction, variant="vqa2016")
    gold = vqa_normalize(answer, variant="vqa2016") if variant == "vqa_both" else answer
    return pred == gold


def judge_prompt(question: str, answer: str, prediction: str) -> str:
    """The Video-ChatGPT judge messages as one text (system instructions, blank line, user turn)."""
    return JUDGE_SYSTEM + "\n\n" + JUDGE_USER.format(question=question, answer=answer, pred=prediction)


def parse_judge_reply(text: str) -> dict[str, Any] | None:
    """``"{'pred': 'yes', 'score': 4}"`` -> ``{"pred": "yes", "score": 4}``; None when unparsable.

    The reference calls ``ast.literal_eval`` on the whole reply; we take the first ``{...}`` in
    it (judges often add prose) and need both keys."""
    match = _DICT.search(text or "")
    if not match:
        return None
    try:
        value = ast.literal_eval(match.group(0))
    except (ValueError, SyntaxError):
        return None
    if not isinstance(value, dict) or "pred" not in value or "score" not in value:
        return None
    try:
        score = int(float(value["score"]))  # the reference: int(score)
    except (TypeError, ValueError):
        return None
    return {"pred": str(value["pred"]), "score": score}


def _acc(name: str, values: Sequence[bool], variant: str, **extra: Any) -> MetricResult:
    n = len(values)
    return MetricResult(name=name, value=float(np.mean(values)) if n else None, higher_is_better=True, variant=variant,
                        provenance=MATCH_VARIANTS[variant], scale=100.0, n=n, extra=extra)


class VideoQATask(TaskBase):
    """Video (frames) + question -> short text answer; exact match, optional judge."""

    output_modality = Modality.TEXT
    scoring_keys: ClassVar[tuple[str, ...]] = ("judge", "judge_generation", "judge_batch_size")

    def __init__(self, *, name: str, loader: Callable[[], list[Sample]], prompt: str = MIO_VIDEO_QA_PROMPT,
                 generation: Mapping[str, Any] | None = None, judge=None,
                 judge_generation: Mapping[str, Any] | None = None, judge_batch_size: int = 8) -> None:
        self._task(name=name, loader=loader, prompt=prompt, generation=generation, placeholders=("video", "question"))
        self.judge = judge
        self.judge_generation = generation_settings(judge_generation or {"max_new_tokens": 64, "do_sample": False},
                                                    where="task.judge_generation")
        self.judge_batch_size = int(judge_batch_size)
        if self.judge_batch_size < 1:
            raise ConfigError(f"task {name}: judge_batch_size must be >= 1, got {judge_batch_size}")
        frames = getattr(loader, "frames", "uniform")
        # A clip whose frames cannot be extracted stays a Video part (the model reports the error).
        self.input_modalities = frozenset({Modality.TEXT, Modality.VIDEO if frames == "video" else Modality.IMAGE})

    def preflight(self) -> None:
        if self.judge is not None:
            if Modality.TEXT not in self.judge.outputs:
                raise ConfigError(f"task {self.name}: judge {self.judge.name!r} does not write text")
            self.judge.load()

    def request(self, sample: Sample) -> Request:
        before, after = self.prompt.split("{video}", 1)
        after = after.replace("{question}", sample.metadata["question"])
        parts = [Text(before)] if before else []
        parts += [p for p in sample.parts if isinstance(p, (Image, Video))]
        parts.append(Text(after))
        return Request(sample_id=sample.id, parts=tuple(parts), output_modality=Modality.TEXT,
                       generation=self.generation, kind="video_qa")

    def prediction(self, sample: Sample, output: Output) -> str:
        if output.text is None:
            raise InvalidOutput("expected a text answer, got nothing")
        return output.text.strip()

    def score(self, generated: Sequence[Generated], *, work_dir: Path) -> ScoreReport:
        rows: list[dict[str, Any]] = []
        for g in generated:
            meta = g.sample.metadata
            row: dict[str, Any] = {"id": g.sample.id, "error": g.error, "question_type": meta["question_type"],
                                   "answer": g.sample.targets[0], "prediction": g.prediction}
            if "category_id" in meta:
                row["category_id"] = meta["category_id"]
            if meta.get("frames_error"):
                row["frames_error"] = meta["frames_error"]
            if g.error is None:
                row["correct"] = exact_match(g.prediction, g.sample.targets[0])
                row["correct_lavis"] = exact_match(g.prediction, g.sample.targets[0], variant="lavis_pred_only")
            else:
                row["stage"] = "generate"
            rows.append(row)
        ok = [r for r in rows if r["error"] is None]
        metrics = [_acc("accuracy", [r["correct"] for r in ok], "vqa_both"),
                   _acc("accuracy_lavis", [r["correct_lavis"] for r in ok], "lavis_pred_only")]
        for qtype in (*[t for t in ("what", "who", "how", "when", "where") if any(r["question_type"] == t for r in ok)],
                      *(["other"] if any(r["question_type"] == "other" for r in ok) else [])):
            sub = [r for r in ok if r["question_type"] == qtype]
            metrics.append(_acc(f"accuracy/{qtype}", [r["correct"] for r in sub], "vqa_both", question_type=qtype))
            metrics.append(_acc(f"accuracy_lavis/{qtype}", [r["correct_lavis"] for r in sub], "lavis_pred_only",
                                question_type=qtype))
        categories = sorted({r["category_id"] for r in ok if r.get("category_id") is not None}, key=str)
        for cat in categories:
            sub = [r for r in ok if r.get("category_id") == cat]
            metrics.append(_acc(f"accuracy/category_{cat}", [r["correct"] for r in sub], "vqa_both", category_id=cat))
        judges: list[Mapping[str, Any]] = []
        settings: dict[str, Any] = {"prompt": self.prompt, "normalization": "vqa2016 (official VQA rules)",
                                    "frames": getattr(self.loader, "frames", None),
                                    "num_frames": getattr(self.loader, "num_frames", None),
                                    "n_frames_errors": sum(1 for r in rows if r.get("frames_error"))}
        if self.judge is not None:
            metrics += self._judge(generated, rows, Path(work_dir))
            judges.append({"model": self.judge.name, **dict(self.judge.provenance()), "role": "video-chatgpt judge",
                           "name": self.judge.name})
            settings.update(judge_model=self.judge.name, judge_protocol="Video-ChatGPT evaluate_activitynet_qa.py "
                            "@659e04b (system text prepended to the user message)",
                            judge_generation=dict(self.judge_generation))
        return ScoreReport(metrics=tuple(metrics), per_sample=tuple(rows), judges=tuple(judges), settings=settings)

    def _judge(self, generated: Sequence[Generated], rows: list[dict[str, Any]], work_dir: Path) -> list[MetricResult]:
        self.judge.load()
        todo = [(g, r) for g, r in zip(generated, rows) if r["error"] is None]
        requests = [Request(sample_id=g.sample.id, parts=(Text(judge_prompt(g.sample.metadata["question"],
                                                                             g.sample.targets[0], g.prediction)),),
                            output_modality=Modality.TEXT, generation=self.judge_generation) for g, _ in todo]
        media_dir = work_dir / "judge_media"
        # a failed (or wrong-length) batch is retried request by request: one bad reply costs one sample
        with progress(total=len(requests), desc=f"scoring: judge {self.judge.name}") as bar:
            replies = generate_batches(self.judge, requests, media_dir=media_dir, batch_size=self.judge_batch_size,
                                       retry_single=True, on_batch=bar.update)
        yes = no = 0
        scores, invalid, log = [], 0, []
        for (g, row), reply in zip(todo, replies):
            parsed = parse_judge_reply(reply.text or "") if reply.ok else None
            log.append({"id": g.sample.id, "reply": reply.text, "error": reply.error, "parsed": parsed})
            if parsed is None:
                invalid += 1
                row["judge"] = None
                continue
            row["judge"] = parsed
            scores.append(parsed["score"])
            pred = parsed["pred"].lower()
            if "yes" in pred:
                yes += 1
            elif "no" in pred:
                no += 1
        work_dir.mkdir(parents=True, exist_ok=True)
        atomic_write_text(work_dir / "judge.jsonl", "".join(json.dumps(x, ensure_ascii=False) + "\n" for x in log))
        prov = f"Video-ChatGPT GPT-judge protocol with judge {self.judge.name!r} (secondary metric, not Table 6's)"
        return [
            MetricResult(name="judge_accuracy", value=yes / (yes + no) if yes + no else None, higher_is_better=True,
                         variant="video_chatgpt", provenance=prov, scale=100.0, n=yes + no,
                         extra={"yes": yes, "no": no, "judge": self.judge.name}),
            MetricResult(name="judge_score", value=float(np.mean(scores)) if scores else None, higher_is_better=True,
                         variant="video_chatgpt", provenance=prov + "; mean int score 0-5", scale=1.0, n=len(scores),
                         extra={"judge": self.judge.name}),
            MetricResult(name="judge_invalid", value=invalid / len(todo) if todo else None, higher_is_better=False,
                         variant="video_chatgpt", provenance="replies without a parsable {'pred', 'score'} dict",
                         scale=100.0, n=len(todo)),
        ]
