"""OmniBench: an image, an audio clip and a 4-option question; accuracy overall, by audio type and
by task type, with the invalid rate.

Prompt: the official ``inference/demo_api_call.py`` ``create_prompt``, verbatim, including its
quirks (a period is appended to the question even after "?"; "based on the given an image"; no
newline after the colon in the both-textual setting). Options are rendered as ``A. <text>`` lines
joined by newlines (the reference formats a spreadsheet column of that shape whose exact separator
is not in the repository: **UNVERIFIED**), followed by the template's final period.

``setting`` selects the ablation (the paper's image-audio / textual image / textual audio /
textual image-audio):

==========================  =======================  ==================================================
setting                      media parts sent         text
==========================  =======================  ==================================================
``image_audio``              image, audio             question
``textual_image``            audio                    ``Image Content: <image content>`` + question
``textual_audio``            image                    ``Audio Content: <audio content>`` + question
``textual_image_audio``      none                     both, transcript first
==========================  =======================  ==================================================

(The reference sends the image even with a caption to image-only API models, and the audio even with
a transcript to Gemini/Reka; here a textual setting replaces the medium, as the paper describes.)

Scoring: the shared multiple-choice core (:mod:`mio_eval.tasks.multiple_choice`), strategy and
letter rule chosen by ``_target_``. Default (the reference's protocol): ``Generate`` read by
``ExtractChoice``, i.e. ``extract_choice`` with the option texts (a reply naming no option or
several is **invalid**: counted as wrong and reported as ``invalid_rate``). ``Likelihood`` scores
the continuations ``" A" .. " D"`` after the same prompt instead (not the paper's protocol; its
name is then added to the variant). The reference parser
(``inference/answer_parsing.py``, MMMU-derived) falls back to a *random* letter and reads
``"C. A man is answering"`` as A; neither is replicated. Gold = ``options.index(answer)``.

Metrics: ``accuracy`` (correct / scored items, the leaderboard's overall), ``invalid_rate``,
``accuracy/<audio type>`` (``speech``, ``sound_event``, ``music``) and ``accuracy/<task type>`` (slugs
of the ``task type`` field, e.g. ``action_and_activity``), with ``accuracy_macro/audio_type`` and
``accuracy_macro/task_type`` (unweighted means over the groups). Every metric's ``variant`` is
the setting. A sample whose generation failed counts as an invalid answer, hence wrong, as the
official scorer counts an empty response (``calculate_metrics.py``), and is listed in
``n_errors`` with its reason (``failed: {_target_: mio_eval.tasks.omnibench.CountWrong}``);
:class:`ExcludeFailed` leaves such samples out of every metric instead, and the variant then says
so (``<setting>+exclude_failed``). The settings record the policy's name (``wrong`` / ``exclude``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, ClassVar, Mapping, Sequence

from mio_eval.errors import ConfigError, check_target
from mio_eval.generation import generation_settings
from mio_eval.metrics.choice import ChoiceAccuracy, choice_letter
from mio_eval.tasks.base import Generated, ScoreReport
from mio_eval.tasks.loaders.omnibench import slug
from mio_eval.tasks.multiple_choice import (ExtractChoice, Generate, LetterRule, ScoringStrategy, check_rule,
                                            check_strategy, format_options, letter_continuations)
from mio_eval.types import Audio, Image, Modality, Output, Request, Sample, Text

__all__ = ["OmniBenchTask", "SETTINGS", "FailurePolicy", "CountWrong", "ExcludeFailed", "omnibench_prompt", "format_options"]

# setting -> (sends image, sends audio)
SETTINGS: Mapping[str, tuple[bool, bool]] = {
    "image_audio": (True, True),
    "textual_image": (False, True),
    "textual_audio": (True, False),
    "textual_image_audio": (False, False),
}
# setting -> the text before the question (create_prompt's four branches, verbatim)
_LEADS: Mapping[str, str] = {
    "image_audio": "Please answer the following question based on the given image and audio:\n",
    "textual_image": "Please answer the following question based on the given caption of an image and an audio:\n"
                     "{caption} ",
    "textual_audio": "Please answer the following question based on the given an image and transcript of an audio:\n"
                     "{transcript} ",
    "textual_image_audio": "Please answer the following question based on the given caption of an image and "
                           "transcript of an audio:{transcript} \n{caption} ",
}
_CHOOSE = "\nPlease choose only one answer from the following options:\n{options}."


def omnibench_prompt(question: str, options: Sequence[str], setting: str = "image_audio", *,
                     audio_content: str = "", image_content: str = "") -> str:
    """The official prompt of ``setting`` (``demo_api_call.py create_prompt``).

    >>> print(omnibench_prompt("Who is speaking?", ["A man", "A woman"]))
    Please answer the following question based on the given image and audio:
    Who is speaking?.
    Please choose only one answer from the following options:
    A. A man
    B. A woman.
    """
    choose = _CHOOSE.format(options=format_options(options))
    if setting not in _LEADS:
        raise ConfigError(f"OmniBench setting must be one of {', '.join(SETTINGS)}, got {setting!r}")
    # str.format substitutes the contents without parsing them (a brace in a transcript is safe)
    lead = _LEADS[setting].format(transcript=f"Audio Content: {audio_content}",
                                  caption=f"Image Content: {image_content}")
    return f"{lead}{question}.{choose}"


class FailurePolicy:
    """What a sample whose generation failed counts as; ``name`` is recorded in the settings
    (``failed``) and ``variant_suffix`` / ``provenance`` in every metric (the gate compares them)."""

    name: ClassVar[str]
    exclude: ClassVar[bool]
    variant_suffix: ClassVar[str]
    provenance: ClassVar[str]
    errors: ClassVar[str]

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class CountWrong(FailurePolicy):
    """The official scorer (``calculate_metrics.py``): no answer = invalid = wrong."""

    name = "wrong"
    exclude = False
    variant_suffix = ""
    provenance = "failed generations counted as invalid (wrong)"
    errors = ("samples whose generation failed count as invalid answers, hence wrong "
              "(as the official scorer; listed in n_errors)")


class ExcludeFailed(FailurePolicy):
    """Failed samples are left out of every metric (not the official protocol; the variant says so)."""

    name = "exclude"
    exclude = True
    variant_suffix = "+exclude_failed"
    provenance = "failed generations left out"
    errors = "samples whose generation failed are left out of every metric (see n_errors)"


def check_failure_policy(value: Any, *, what: str = "task.failed") -> FailurePolicy:
    """``value`` if it is a failure policy, else a one-line ConfigError naming the ``_target_`` form
    (``wrong`` / ``exclude`` are the string knob of earlier versions)."""
    return check_target(value, FailurePolicy, what=what, kind="failure policy", choices="CountWrong, ExcludeFailed",
                        module=__name__, hint="e.g. task.failed._target_=mio_eval.tasks.omnibench.ExcludeFailed")


class OmniBenchTask:
    """OmniBench in one of its four input settings (see the module docstring)."""

    output_modality = Modality.TEXT
    scoring_keys: ClassVar[tuple[str, ...]] = ("failed", "letter_rule")

    def __init__(
        self,
        *,
        name: str,
        loader: Callable[[], list[Sample]],
        setting: str = "image_audio",
        generation: Mapping[str, Any] | None = None,
        failed: FailurePolicy | None = None,
        scoring: ScoringStrategy | None = None,
        letter_rule: LetterRule | None = None,
    ) -> None:
        if setting not in SETTINGS:
            raise ConfigError(f"task.setting must be one of {', '.join(SETTINGS)}, got {setting!r}")
        self.failure_policy = check_failure_policy(CountWrong() if failed is None else failed)
        self.failed = self.failure_policy.name  # the name the settings record
        self.scoring = check_strategy(Generate() if scoring is None else scoring)
        self.letter_rule = check_rule(ExtractChoice() if letter_rule is None else letter_rule)
        self.needs_loglikelihood = self.scoring.needs_loglikelihood
        self.name = name
        self.loader = loader
        self.setting = setting
        self.generation = generation_settings(generation)
        image, audio = SETTINGS[setting]
        self.input_modalities = frozenset({Modality.TEXT} | ({Modality.IMAGE} if image else set())
                                          | ({Modality.AUDIO} if audio else set()))

    def samples(self) -> list[Sample]:
        return self.loader()

    def request(self, sample: Sample) -> Request:
        image, audio = SETTINGS[self.setting]
        meta = sample.metadata
        media = tuple(p for p in sample.parts
                      if (isinstance(p, Image) and image) or (isinstance(p, Audio) and audio))
        prompt = omnibench_prompt(meta["question"], sample.choices, self.setting,
                                  audio_content=meta.get("audio_content", ""),
                                  image_content=meta.get("image_content", ""))
        return Request(sample_id=sample.id, parts=(*media, Text(prompt)), output_modality=Modality.TEXT,
                       generation=self.generation, kind="mcq",
                       continuations=self.scoring.continuations(letter_continuations(len(sample.choices))))

    def prediction(self, sample: Sample, output: Output) -> dict[str, Any]:
        choice = self.scoring.choose(output, choices=sample.choices, rule=self.letter_rule)
        return {"choice": choice, "letter": None if choice is None else choice_letter(choice)}

    def score(self, generated: Sequence[Generated], *, work_dir: Path) -> ScoreReport:
        rows, preds, golds, audio_types, task_types = [], [], [], [], []
        for g in generated:
            meta = g.sample.metadata
            base = {"id": g.sample.id, "audio_type": slug(meta["audio_type"]), "task_type": slug(meta["task_type"]),
                    "gold": g.sample.targets[0]}
            if g.error is not None and self.failure_policy.exclude:
                rows.append({**base, "error": g.error})
                continue
            if g.error is not None:  # the official scorer: no answer = invalid = wrong
                choice = None
                rows.append({**base, "error": g.error, "pred": None, "correct": False})
            else:
                choice = g.prediction.get("choice")
                rows.append({**base, "error": None, "pred": g.prediction.get("letter"),
                             "correct": choice == meta["answer"]})
            preds.append(choice)
            golds.append(int(meta["answer"]))
            audio_types.append(base["audio_type"])
            task_types.append(base["task_type"])
        variant = self.setting + self.failure_policy.variant_suffix
        if self.needs_loglikelihood:  # not the reference protocol: say so in every metric
            variant += f"+{self.scoring.name}"
        failures = self.failure_policy.provenance
        metric = ChoiceAccuracy(
            variant=variant,
            provenance=("OmniBench official prompt (demo_api_call.py); gold = options.index(answer); "
                        + ("argmax of summed log-probabilities of ' A'.. (not the reference protocol)"
                           if self.needs_loglikelihood else
                           f"deterministic extraction ({self.letter_rule.provenance}), invalid counted as wrong, "
                           "no random fallback") + f"; {failures}"))
        metric.update(preds, golds, groups={"audio_type": audio_types, "task_type": task_types})
        return ScoreReport(
            metrics=tuple(metric.compute()),
            per_sample=tuple(rows),
            settings={"setting": self.setting, "variant": variant, "scoring": self.scoring.name,
                      "extraction": None if self.needs_loglikelihood else repr(self.letter_rule),
                      "failed": self.failed,
                      "errors": self.failure_policy.errors},
        )
