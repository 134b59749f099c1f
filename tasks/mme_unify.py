"""MME-Unify (Xie et al. 2025, aba122/MME-Unify @ 0956091): understanding, generation and unify
tasks, their scores and the US / GS / Unify-S / Overall aggregation.

Three task classes, one per family (datasets differ only in the loader's ``subtasks``):

* :class:`MMEUnifyUnderstandingTask` — SIPU / MITIU / VPU multiple choice. The reference
  (``evaluate/Evaluate_Understanding.py``) counts ``output == answer``, so the reply must already
  be the bare letter; we extract the letter first (``metrics.choice.extract_choice``: deterministic,
  never a guess; ``None`` counts wrong and is reported as ``invalid_rate``) and also report the
  reference's strict comparison (``accuracy_strict``). US = mean of the three subtask accuracies.
* :class:`MMEUnifyGenerationTask` — FIR (PSNR + LPIPS), TIE (CLIP-I vs the edited image + CLIP-T
  vs the instruction), TIG (CLIP-I + CLIP-T + LPIPS), CIVG / TVG / VP (FVD-style ResNet-50
  feature distance mapped by ``100 * (1 - (x - 1) / 999)``, the all-equal quirk selectable;
  per-frame CLIP-T for CIVG and TVG as the reference logs it). Image and video subtasks produce
  different modalities, so one run holds either kind (two configs).
* :class:`MMEUnifyUnifyTask` — IEE, CSQ, AL, SD: a text answer (letter by ``extract_choice``;
  IEE's explanation -> nearest option by CLIP text embedding, as ``Evaluate_IEE.py``) and a
  generated image judged by the nearest of 4 candidate images under CLIP ViT-B/32 (correct = the
  ground truth is nearest); text / image / combined accuracy. VCoT: one request per maze step,
  action / location / image accuracy (image = nearest of the item's step images is this step's).

**Normalisation (UNVERIFIED, chosen here: aba122/MME-Unify @ 0956091 publishes none).** The paper's
mapping of PSNR / LPIPS / CLIP to 0-100 and which unify accuracy enters Unify-S are not published in code. Variant
``mio_eval_v1`` (recorded on every ``score/*`` result): PSNR -> ``2 * min(PSNR, 50)``, LPIPS ->
``100 * (1 - LPIPS)`` clipped to [0, 100], CLIP-I / CLIP-T -> the x100 number; a subtask score is
the mean of its mapped metrics; a video subtask's is the reference's mapped FVD mean. A unify
task's score is the mean of its text and image accuracy (``unify_score`` selects ``combined``,
``text`` or ``image``); VCoT's is the mean of the action, location and image step accuracies.
US, GS and Unify-S are means of their subtask scores; Overall (MME-U) is the mean of the three,
reported only when every subtask of every family was scored in full (:func:`mme_unify_scores`).

**Reference quirks.** IEE options are listed in shuffled label order ("D: ...", "C: ...") but the
reference maps the nearest option's list *position* to a letter; we read the option's own label
(``iee_text_label="position"`` replicates). VCoT's reference divides every step's correct count by
N items x the longest walk (steps a walk does not have count as wrong) and can never score the
final "Finish" step's image (there is no image for it); ``vcot_denominator="official"`` replicates,
the default ``steps`` counts the steps that exist (the image aspect over steps that have an image).
The video scorer reads the generated key frames from JPEG files (``extract_keyframes``); we read
them from the video, ``frame_codec="jpeg_q95"`` replicates the JPEG round trip.
The VCoT history is teacher-forced (previous ground-truth actions, the initial and current map):
the official multi-turn driver is not published (UNVERIFIED).

Each scoring pass also writes the benchmark's output template (``evaluation/output_test_template
.json``: the original item plus ``output``) to ``<run dir>/mme_unify_<family>_output.json``.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, ClassVar, Mapping, Sequence

import numpy as np

from mio_eval.errors import ConfigError, MediaError
from mio_eval.generation import generation_settings
from mio_eval.jsonl import read_lines
from mio_eval.metrics.base import MetricResult
from mio_eval.metrics.choice import ChoiceAccuracy, extract_choice
from mio_eval.progress import progress
from mio_eval.tasks.base import Generated, InvalidOutput, ScoreReport
from mio_eval.tasks.loaders.mme_unify import GENERATION_SUBTASKS, UNDERSTANDING_SUBTASKS, UNIFY_SUBTASKS
from mio_eval.types import Image, Modality, Output, Request, Sample, Text, Video

__all__ = [
    "MMEUnifyUnderstandingTask",
    "MMEUnifyGenerationTask",
    "MMEUnifyUnifyTask",
    "mme_unify_scores",
    "scores_from_metrics",
    "read_official_prompts",
    "NORMALIZATION",
]

NORMALIZATION = "mio_eval_v1"
IMAGE_SUBTASKS = ("FIR", "TIE", "TIG")
VIDEO_SUBTASKS = ("CIVG", "TVG", "VP")

# Paraphrased instructions (the official ones are in the repo's Prompt.txt; point ``prompts_file``
# at a local copy to use them verbatim).
DEFAULT_PROMPTS = {
    "understanding": "Answer the multiple-choice question about the given image(s) or video. "
                     "Reply only in the format \"Answer: X\" where X is the letter of the correct option.",
    "IEE": "Edit the image as the instruction asks. First write \"Explanation:\" with a short description of "
           "the target object before and after the edit, then generate the edited image.",
    "CSQ": "Choose the correct option and reply \"Answer: X\" (X is A, B, C or D), then generate an image "
           "showing the chosen answer.",
    "AL": "Solve the geometry problem. Reply \"Answer: X\" (X is A, B, C or D) and generate the diagram with "
          "the auxiliary lines you used drawn on it.",
    "SD": "The two images differ in several places. Reply \"Answer: X\" with the option giving the number of "
          "differences, and generate an image of the differing regions of the first image on a white background.",
    "VCoT_first": "A 2D grid maze: reach the goal without stepping into a hole, moving Left, Right, Up or Down "
                  "one square at a time. Give the next move, your new location and the map after the move, as:\n"
                  "Action: <move>\nLocation: [x, y]\nImage: <the map>",
    "VCoT_next": "Continue the maze walk from the current state (the first image is the initial map, the last "
                 "the current one). Give the next move (\"Finish\" when the goal is reached), your new location "
                 "and the map after the move, as:\nAction: <move>\nLocation: [x, y]\nImage: <the map>",
}
_SECTIONS = {"Understanding:": "understanding", "Image_Editing_and_Explaining:": "IEE",
             "Common_Sense_Question:": "CSQ", "Auxiliary Lines:": "AL", "SpotDiff:": "SD",
             "First Step:": "VCoT_first", "After First Step:": "VCoT_next"}


def read_official_prompts(path: str | Path) -> dict[str, str]:
    """The prompts of a local copy of MME-Unify's ``Prompt.txt``, keyed as ``DEFAULT_PROMPTS``."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"MME-Unify prompt file not found: {path}")
    found: dict[str, list[str]] = {}
    key = None
    for _, line in read_lines(path, what="MME-Unify prompt file"):
        if line.strip() in _SECTIONS:
            key = _SECTIONS[line.strip()]
            found[key] = []
        elif line.strip() == "Visual CoT:":
            key = None
        elif key is not None:
            found[key].append(line)
    prompts = {k: "\n".join(v).strip().strip('"').strip() for k, v in found.items()}
    missing = sorted(set(DEFAULT_PROMPTS) - set(prompts))
    if missing:
        raise ConfigError(f"{path}: no section(s) for {', '.join(missing)}")
    return prompts


def _prompts(prompts_file: str | None, overrides: Mapping[str, str] | None) -> dict[str, str]:
    prompts = dict(DEFAULT_PROMPTS)
    if prompts_file:
        prompts.update(read_official_prompts(prompts_file))
    prompts.update(overrides or {})
    return prompts


def _mean(values: Sequence[float]) -> float | None:
    return float(np.mean(values)) if len(values) else None


def _result(name: str, value: float | None, n: int, *, higher: bool = True, variant: str = NORMALIZATION,
            provenance: str = "", scale: float = 1.0, **extra: Any) -> MetricResult:
    return MetricResult(name=name, value=value, higher_is_better=higher, variant=variant, provenance=provenance,
                        scale=scale, n=n, extra=extra)


def _export(family: str, items: list[dict[str, Any]], settings: dict[str, Any]) -> dict[str, Any]:
    """The submission as an artifact (the runner writes it beside metrics.json), named in ``settings``."""
    name = f"mme_unify_{family}_output.json"
    settings["submission"] = name
    return {name: items}


def _media(output: Output, kind: type) -> str | None:
    return next((p.path for p in output.media if isinstance(p, kind)), None)


# --- aggregation ----------------------------------------------------------------------------------


def mme_unify_scores(*, understanding: Mapping[str, float], generation: Mapping[str, float],
                     unify: Mapping[str, float], partial: Sequence[str] = ()) -> dict[str, Any]:
    """US / GS / Unify-S (means of the given subtask scores, 0-100) and Overall (MME-U) = their mean.

    ``complete`` says, per family, whether every subtask (3 / 6 / 5) was given and none is in
    ``partial`` (subtasks scored on part of their items, e.g. a limited run). Overall is reported
    only when all three families are complete; otherwise it is None and ``overall_missing`` says
    why (the family means of incomplete families are still given, flagged by ``complete``).

    >>> full = mme_unify_scores(understanding=dict.fromkeys(UNDERSTANDING_SUBTASKS, 60.0),
    ...                         generation=dict.fromkeys(GENERATION_SUBTASKS, 30.0),
    ...                         unify=dict.fromkeys(UNIFY_SUBTASKS, 15.0))
    >>> full["Overall"], full["overall_missing"]
    (35.0, None)
    >>> mme_unify_scores(understanding={"SIPU": 60.0}, generation={}, unify={})["overall_missing"][:33]
    'US lacks MITIU, VPU; GS lacks FIR'
    """
    given = {"US": (understanding, UNDERSTANDING_SUBTASKS), "GS": (generation, GENERATION_SUBTASKS),
             "Unify": (unify, UNIFY_SUBTASKS)}
    means = {family: _mean(list(scores.values())) for family, (scores, _) in given.items()}
    reasons = []
    for family, (scores, expected) in given.items():
        absent = [code for code in expected if code not in scores]
        limited = [code for code in expected if code in scores and code in set(partial)]
        if absent:
            reasons.append(f"{family} lacks {', '.join(absent)}")
        if limited:
            reasons.append(f"{family} has partial {', '.join(limited)}")
    complete = {family: not any(r.startswith(f"{family} ") for r in reasons) for family in given}
    return {
        **means,
        "Overall": float(np.mean(list(means.values()))) if not reasons else None,
        "overall_missing": "; ".join(reasons) or None,
        "complete": complete,
        "normalization": NORMALIZATION,
    }


def scores_from_metrics(metrics_jsons: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """:func:`mme_unify_scores` from the ``metrics.json`` contents of MME-Unify runs (their
    ``score/<subtask>`` entries). A run marked ``"complete": false`` or with a ``limit`` makes
    its subtasks partial, so Overall stays None."""
    found: dict[str, dict[str, float]] = {"understanding": {}, "generation": {}, "unify": {}}
    partial: list[str] = []
    for data in metrics_jsons:
        limited = data.get("complete") is False or data.get("limit") is not None
        for key, entry in data.get("metrics", {}).items():
            if not key.startswith("score/") or not isinstance(entry, Mapping) or entry.get("value") is None:
                continue
            code = key.split("/", 1)[1]
            family = ("understanding" if code in UNDERSTANDING_SUBTASKS else
                      "generation" if code in GENERATION_SUBTASKS else "unify" if code in UNIFY_SUBTASKS else None)
            if family:
                found[family][code] = float(entry["value"])
                if limited:
                    partial.append(code)
    return mme_unify_scores(**found, partial=partial)


# --- understanding --------------------------------------------------------------------------------


class MMEUnifyUnderstandingTask:
    """SIPU / MITIU / VPU multiple choice: letter extraction, accuracy per subtask, US."""

    output_modality = Modality.TEXT
    scoring_keys: ClassVar[tuple[str, ...]] = ("export",)

    def __init__(self, *, name: str, loader, prompts_file: str | None = None, prompts: Mapping[str, str] | None = None,
                 generation: Mapping[str, Any] | None = None, export: bool = True) -> None:
        self.name = name
        self.loader = loader
        self.prompts = _prompts(prompts_file, prompts)
        self.generation = generation_settings(generation)
        self.export = export
        subtasks = getattr(loader, "subtasks", tuple(UNDERSTANDING_SUBTASKS))
        self.input_modalities = frozenset({Modality.TEXT, Modality.IMAGE} | ({Modality.VIDEO} if "VPU" in subtasks else set()))
        if set(subtasks) == {"VPU"}:
            self.input_modalities = frozenset({Modality.TEXT, Modality.VIDEO})

    def samples(self) -> list[Sample]:
        return self.loader()

    def request(self, sample: Sample) -> Request:
        options = "\n".join(sample.metadata["options"])
        parts = (Text(self.prompts["understanding"] + "\n"), *sample.parts, Text("\n" + options))
        return Request(sample_id=sample.id, parts=parts, output_modality=Modality.TEXT, generation=self.generation)

    def prediction(self, sample: Sample, output: Output) -> dict[str, Any]:
        if output.text is None:
            raise InvalidOutput("expected a text answer")
        index = extract_choice(output.text, len(sample.choices), choices=sample.choices)
        return {"text": output.text, "choice": sample.metadata["labels"][index] if index is not None else None}

    def score(self, generated: Sequence[Generated], *, work_dir: Path) -> ScoreReport:
        acc = ChoiceAccuracy(variant="extract_choice",
                             provenance="MME-Unify Evaluate_Understanding.py exact match, after deterministic letter "
                                        "extraction (metrics.choice.extract_choice); invalid counted wrong")
        rows, preds, golds, groups, strict, exported = [], [], [], [], [], []
        for g in generated:
            meta = g.sample.metadata
            item = dict(meta["item"])
            if g.error is not None:
                rows.append({"id": g.sample.id, "error": g.error, "stage": "generate", "subtask": meta["subtask"]})
                exported.append({**item, "output": None, "error": g.error})
                continue
            labels = list(meta["labels"])
            letter = g.prediction["choice"]
            preds.append(labels.index(letter) if letter is not None else None)
            golds.append(meta["gold_index"])
            groups.append(meta["subtask"])
            strict.append(g.prediction["text"] == g.sample.targets[0])
            rows.append({"id": g.sample.id, "error": None, "subtask": meta["subtask"], "choice": letter,
                         "answer": g.sample.targets[0], "correct": letter == g.sample.targets[0]})
            exported.append({**item, "output": letter if letter is not None else g.prediction["text"]})
        acc.update(preds, golds, groups=groups)
        metrics = acc.compute()
        per_subtask = {m.extra["group"]: m for m in metrics if m.name.startswith("accuracy/")}
        scores = [_result(f"score/{code}", m.value * 100.0, m.n, variant="accuracy_x100",
                          provenance="subtask accuracy x100 (extract_choice)") for code, m in per_subtask.items()]
        metrics.append(_result("accuracy_strict", _mean(strict), len(strict), scale=100.0, variant="reference_exact",
                               provenance="Evaluate_Understanding.py: output == answer on the raw reply"))
        metrics.extend(scores)
        metrics.append(_result("US", _mean([s.value for s in scores]), len(scores), variant="mean_of_subtasks",
                               provenance="mean of the SIPU / MITIU / VPU accuracies x100 (MME-Unify US)",
                               complete=set(per_subtask) == set(UNDERSTANDING_SUBTASKS)))
        settings: dict[str, Any] = {"extraction": "metrics.choice.extract_choice", "normalization": NORMALIZATION}
        artifacts = _export("understanding", exported, settings) if self.export else {}
        return ScoreReport(metrics=tuple(metrics), per_sample=tuple(rows), settings=settings, artifacts=artifacts)


# --- generation -----------------------------------------------------------------------------------


def _psnr_score(value: float) -> float:
    return 2.0 * min(value, 50.0)


def _lpips_score(value: float) -> float:
    return float(np.clip(100.0 * (1.0 - value), 0.0, 100.0))


class MMEUnifyGenerationTask:
    """Image (FIR / TIE / TIG) or video (CIVG / TVG / VP) generation, scored against the references."""

    scoring_keys: ClassVar[tuple[str, ...]] = ("clip", "lpips", "video_features", "clip_t_variant", "pair_resize",
                                               "psnr_resize", "video_frames", "num_frames", "all_equal_quirk",
                                               "frame_codec", "export")

    def __init__(self, *, name: str, loader, prompts: Mapping[str, str] | None = None,
                 generation: Mapping[str, Any] | None = None, clip=None, lpips=None, video_features=None,
                 clip_t_variant: str = "mme_unify", pair_resize: str = "min_size", psnr_resize: str = "min_size",
                 video_frames: str = "keyframes", num_frames: int = 16, all_equal_quirk: bool = True,
                 frame_codec: str = "none", export: bool = True) -> None:
        self.name = name
        self.loader = loader
        subtasks = tuple(getattr(loader, "subtasks", IMAGE_SUBTASKS))
        if set(subtasks) <= set(IMAGE_SUBTASKS):
            self.output_modality = Modality.IMAGE
        elif set(subtasks) <= set(VIDEO_SUBTASKS):
            self.output_modality = Modality.VIDEO
        else:
            raise ConfigError("one MME-Unify generation run holds image subtasks (FIR, TIE, TIG) or video subtasks "
                              f"(CIVG, TVG, VP), not both: got {', '.join(subtasks)}")
        if pair_resize not in ("min_size", "none") or psnr_resize not in ("min_size", "reference"):
            raise ConfigError(f"pair_resize must be min_size|none and psnr_resize min_size|reference, got "
                              f"{pair_resize!r} / {psnr_resize!r}")
        if video_frames not in ("keyframes", "uniform"):
            raise ConfigError(f"video_frames must be keyframes or uniform, got {video_frames!r}")
        if frame_codec not in ("none", "jpeg_q95"):  # metrics.image_quality.FRAME_CODECS
            raise ConfigError(f"frame_codec must be none or jpeg_q95, got {frame_codec!r}")
        self.subtasks = subtasks
        self.prompts = {"FIR": "Reconstruct this image as faithfully as possible.", "TIE": "{prompt}",
                        "TIG": "{prompt}", "CIVG": "{prompt}", "TVG": "{prompt}", "VP": "{prompt}", **(prompts or {})}
        self.generation = generation_settings(generation)
        self.clip, self.lpips, self.video_features = clip, lpips, video_features
        self.clip_t_variant, self.pair_resize, self.psnr_resize = clip_t_variant, pair_resize, psnr_resize
        self.video_frames, self.num_frames, self.all_equal_quirk = video_frames, int(num_frames), bool(all_equal_quirk)
        self.frame_codec = frame_codec
        self.export = export
        reads_image = any(s in ("FIR", "TIE", "CIVG", "VP") for s in subtasks)
        self.input_modalities = frozenset({Modality.TEXT} | ({Modality.IMAGE} if reads_image else set()))

    def _needs(self) -> dict[str, Any]:
        needs = {}
        if {"TIE", "TIG", "CIVG", "TVG"} & set(self.subtasks):
            needs["clip"] = self.clip
        if {"FIR", "TIG"} & set(self.subtasks):
            needs["lpips"] = self.lpips
        if set(VIDEO_SUBTASKS) & set(self.subtasks):
            needs["video_features"] = self.video_features
        return needs

    def preflight(self) -> None:
        for key, scorer in self._needs().items():
            if scorer is None:
                raise ConfigError(f"task {self.name}: task.{key} is required to score {', '.join(self.subtasks)}")
            scorer.load()

    def samples(self) -> list[Sample]:
        return self.loader()

    def request(self, sample: Sample) -> Request:
        code = sample.metadata["subtask"]
        text = self.prompts[code].format(prompt=sample.metadata["prompt"])
        parts = tuple(p for p in sample.parts if not isinstance(p, Text)) + (Text(text),)
        return Request(sample_id=sample.id, parts=parts, output_modality=self.output_modality,
                       generation=self.generation)

    def prediction(self, sample: Sample, output: Output) -> str:
        kind = Image if self.output_modality is Modality.IMAGE else Video
        path = _media(output, kind)
        if path is None:
            found = ", ".join(sorted(m.value for m in output.modalities())) or "nothing"
            raise InvalidOutput(f"expected a generated {self.output_modality.value}, got {found}")
        return path

    # -- per-sample scoring --------------------------------------------------------------------

    def _pair(self, gen: str, ref: str):
        from PIL import Image as PILImage

        from mio_eval.metrics.image_quality import load_rgb, resize_pair

        if self.pair_resize == "none":
            return load_rgb(gen), load_rgb(ref)
        # MME-Unify resizes both to (min H, min W) and round-trips ToPILImage (mul(255).byte(): truncation)
        a, b, _ = resize_pair(gen, ref, mode="min_size")
        return tuple(PILImage.fromarray((x * np.float32(255.0)).astype(np.uint8)) for x in (a, b))

    def _image_row(self, code: str, gen: str, ref: str, prompt: str) -> dict[str, Any]:
        from mio_eval.metrics.clip_score import clip_image_similarity, clip_text_similarity
        from mio_eval.metrics.image_quality import psnr

        row: dict[str, Any] = {}
        if code == "FIR":
            row["psnr"] = psnr(gen, ref, resize=self.psnr_resize)
            row["lpips"] = self.lpips(gen, ref)
            row["score"] = float(np.mean([_psnr_score(row["psnr"]), _lpips_score(row["lpips"])]))
            return row
        g, r = self._pair(gen, ref)
        row["clip_i"] = clip_image_similarity([g], [r], self.clip)[0]
        row["clip_t"] = clip_text_similarity([g], [prompt], self.clip, variant=self.clip_t_variant)[0]
        parts = [row["clip_i"], row["clip_t"]]
        if code == "TIG":
            # the reference feeds LPIPS the resized float tensors, not the uint8 PIL copies made for CLIP
            row["lpips"] = self.lpips(gen, ref)
            parts.append(_lpips_score(row["lpips"]))
        row["score"] = float(np.mean(parts))
        return row

    def _video_row(self, code: str, gen: str, ref: str | None, prompt: str) -> dict[str, Any]:
        from mio_eval.metrics.clip_score import clip_text_similarity
        from mio_eval.metrics.image_quality import (frame_codec, keyframe_indices, read_video_frames,
                                                    uniform_indices, video_feature_distance)

        frames = read_video_frames(gen)
        pick = (keyframe_indices(frames, num_frames=self.num_frames) if self.video_frames == "keyframes"
                else uniform_indices(len(frames), self.num_frames))
        chosen = [frame_codec(frames[i], self.frame_codec) for i in pick]
        row: dict[str, Any] = {"n_frames": len(chosen)}
        if ref is None:  # the reference's _validate_t2v_item skips such items: no distance, no CLIP-T
            row["fvd"] = None
            row["note"] = "no reference video in the annotations: distance and CLIP-T not computed"
            return row
        if code in ("CIVG", "TVG"):
            # CLIPMetrics.calculate_similarity keeps the first 70 words before tokenizing (77 tokens)
            text = " ".join(prompt.split()[:70])
            row["clip_t"] = float(np.mean(clip_text_similarity(chosen, [text] * len(chosen), self.clip,
                                                               variant=self.clip_t_variant)))
        ref_frames = read_video_frames(ref)
        ref_chosen = [ref_frames[i] for i in uniform_indices(len(ref_frames), len(chosen))]
        row["fvd"] = video_feature_distance(chosen, ref_chosen, self.video_features)
        return row

    def score(self, generated: Sequence[Generated], *, work_dir: Path) -> ScoreReport:
        from mio_eval.metrics.image_quality import normalize_video_scores

        rows, exported = [], []
        for g in progress(generated, desc="scoring: MME-Unify generation"):
            meta = g.sample.metadata
            code = meta["subtask"]
            item = dict(meta["item"])
            if g.error is not None:
                rows.append({"id": g.sample.id, "error": g.error, "stage": "generate", "subtask": code})
                exported.append({**item, "output": None, "error": g.error})
                continue
            gen = _media(g.output, Image if self.output_modality is Modality.IMAGE else Video)
            exported.append({**item, "output": gen})
            ref = g.sample.targets[0] if g.sample.targets else None
            try:
                if self.output_modality is Modality.IMAGE:
                    if ref is None:
                        raise MediaError("no reference image in the annotations")
                    row = self._image_row(code, gen, ref, meta["prompt"])
                else:
                    row = self._video_row(code, gen, ref, meta["prompt"])
            except MediaError as exc:
                rows.append({"id": g.sample.id, "error": f"score: {exc}", "stage": "score", "subtask": code})
                continue
            rows.append({"id": g.sample.id, "error": None, "subtask": code, **row})

        metrics: list[MetricResult] = []
        for code in self.subtasks:
            ok = [r for r in rows if r["subtask"] == code and not r["error"]]
            for key, higher, scale, prov in (
                    ("psnr", True, 1.0, f"skimage PSNR, resize={self.psnr_resize} (min_size = MME-Unify torch bilinear, "
                                        "[0,1], data_range 1; reference = PIL bilinear to the reference, data_range 255)"),
                    ("lpips", False, 1.0, "lpips package LPIPS"),
                    ("clip_i", True, 1.0, "100*cos of CLIP image embeddings, unclamped"),
                    ("clip_t", True, 1.0, f"CLIP-T variant {self.clip_t_variant}"),
                    ("fvd", False, 1.0, "MME-Unify FVD-style: squared L2 of frame-mean ResNet-50 features")):
                values = [r[key] for r in ok if r.get(key) is not None]
                if values or any(key in r for r in ok):
                    metrics.append(_result(f"{key}/{code}", _mean(values), len(values), higher=higher, scale=scale,
                                           variant=self._variant(key), provenance=prov))
            if code in VIDEO_SUBTASKS:
                raw = [r["fvd"] for r in ok if r.get("fvd") is not None]
                mapped = normalize_video_scores(raw, all_equal_quirk=self.all_equal_quirk)
                value = _mean(mapped)
                metrics.append(_result(f"score/{code}", value, len(mapped),
                                       variant="fvd_mapped_all_equal_quirk" if self.all_equal_quirk else "fvd_mapped",
                                       provenance="mean of 100*(1-(x-1)/999) per sample (Evaluate_Generation_Video.py)"
                                                  + ("; all-equal list -> 100 (reference quirk)" if self.all_equal_quirk else ""),
                                       all_equal_quirk_applied=bool(self.all_equal_quirk and raw and len(set(raw)) == 1)))
            else:
                scores = [r["score"] for r in ok]
                metrics.append(_result(f"score/{code}", _mean(scores), len(scores),
                                       provenance="UNVERIFIED normalisation: mean of PSNR->2*min(PSNR,50), "
                                                  "LPIPS->100*(1-LPIPS), CLIP->x100"))
        subtask_scores = [m.value for m in metrics if m.name.startswith("score/") and m.value is not None]
        metrics.append(_result("GS_partial", _mean(subtask_scores), len(subtask_scores), variant=NORMALIZATION,
                               provenance="mean of this run's generation subtask scores; GS = mean over all six "
                                          "(mme_unify_scores)", subtasks=list(self.subtasks)))
        judges = [dict(s.provenance()) for s in self._needs().values() if s is not None]
        settings: dict[str, Any] = {"clip_t_variant": self.clip_t_variant, "pair_resize": self.pair_resize,
                                    "psnr_resize": self.psnr_resize, "video_frames": self.video_frames,
                                    "num_frames": self.num_frames, "all_equal_quirk": self.all_equal_quirk,
                                    "frame_codec": self.frame_codec,
                                    "normalization": NORMALIZATION}
        artifacts = _export(f"generation_{self.output_modality.value}", exported, settings) if self.export else {}
        return ScoreReport(metrics=tuple(metrics), per_sample=tuple(rows), judges=tuple(judges), settings=settings,
                           artifacts=artifacts)

    def _variant(self, key: str) -> str:
        if key == "lpips" and self.lpips is not None:
            return self.lpips.variant
        return {"psnr": f"resize={self.psnr_resize}", "clip_i": f"cosine_x100/pair_resize={self.pair_resize}",
                "clip_t": self.clip_t_variant,
                "fvd": f"resnet50_sqeuclid/{self.video_frames}/{self.frame_codec}"}.get(key, key)


# --- unify ----------------------------------------------------------------------------------------

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
    scoring_keys: ClassVar[tuple[str, ...]] = ("clip", "unify_score", "iee_text_label", "vcot_denominator", "export")

    def __init__(self, *, name: str, loader, clip=None, prompts_file: str | None = None,
                 prompts: Mapping[str, str] | None = None, generation: Mapping[str, Any] | None = None,
                 unify_score: str = "mean_text_image", iee_text_label: str = "choice_label",
                 vcot_denominator: str = "steps", export: bool = True) -> None:
        if unify_score not in ("mean_text_image", "combined", "text", "image"):
            raise ConfigError(f"unify_score must be mean_text_image|combined|text|image, got {unify_score!r}")
        if iee_text_label not in ("choice_label", "position"):
            raise ConfigError(f"iee_text_label must be choice_label or position, got {iee_text_label!r}")
        if vcot_denominator not in ("steps", "official"):
            raise ConfigError(f"vcot_denominator must be steps or official, got {vcot_denominator!r}")
        self.name = name
        self.loader = loader
        self.subtasks = tuple(getattr(loader, "subtasks", tuple(UNIFY_SUBTASKS)))
        self.clip = clip
        self.prompts = _prompts(prompts_file, prompts)
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
        image = _media(output, Image)
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
            index = extract_choice(text, len(sample.choices), choices=sample.choices) if text else None
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
        return meta["labels"][best] if self.iee_text_label == "choice_label" else "ABCDEFGH"[best]

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
            image = _media(g.output, Image)
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
        settings: dict[str, Any] = {"unify_score": self.unify_score, "iee_text_label": self.iee_text_label,
                                    "vcot_denominator": self.vcot_denominator, "normalization": NORMALIZATION,
                                    "vcot_history": "teacher-forced (ground-truth previous actions and maps)"}
        artifacts = _export("unify", list(exported.values()), settings) if self.export else {}
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
                metrics.extend(self._vcot_metrics(ok, total))
                continue
            n = len(total)  # the reference divides by every item (failed ones count wrong)
            accs = {}
            for aspect in ("text", "image", "combined"):
                accs[aspect] = sum(r[aspect] for r in ok) / n
                metrics.append(_result(f"{aspect}_accuracy/{code}", accs[aspect], n, scale=100.0, variant="reference",
                                       provenance=f"MME-Unify Evaluate_{code}: correct / all items"))
            value = {"mean_text_image": (accs["text"] + accs["image"]) / 2}.get(self.unify_score, accs.get(self.unify_score))
            metrics.append(_result(f"score/{code}", 100.0 * value, n, variant=f"{NORMALIZATION}/{self.unify_score}",
                                   provenance="UNVERIFIED: which accuracy enters Unify-S is not published"))
        scores = [m.value for m in metrics if m.name.startswith("score/")]
        metrics.append(_result("Unify_partial", _mean(scores), len(scores),
                               provenance="mean of this run's unify task scores (Unify-S when all five ran)",
                               complete=set(self.subtasks) == set(UNIFY_SUBTASKS)))
        return metrics

    def _vcot_metrics(self, ok: list[dict[str, Any]], total: Sequence[Generated]) -> list[MetricResult]:
        items = {g.sample.metadata["item_id"] for g in total}
        longest = max(g.sample.metadata["n_steps"] for g in total)
        out, accs = [], []
        for aspect in ("action", "location", "image"):
            correct = sum(bool(r[aspect]) for r in ok)
            if self.vcot_denominator == "official":
                n = len(items) * longest
            elif aspect == "image":
                n = sum(1 for g in total if g.sample.metadata["image_target"] is not None)
            else:
                n = len(total)
            accs.append(correct / n if n else 0.0)
            out.append(_result(f"{aspect}_accuracy/VCoT", accs[-1], n, scale=100.0, variant=self.vcot_denominator,
                               provenance="Evaluate_VSP.py step accuracy"
                                          + (" (N items x longest walk)" if self.vcot_denominator == "official" else "")))
        out.append(_result("score/VCoT", 100.0 * float(np.mean(accs)), len(total),
                           variant=f"{NORMALIZATION}/{self.vcot_denominator}",
                           provenance="mean of action / location / image step accuracies (Evaluate_VSP.py overall)"))
        return out
