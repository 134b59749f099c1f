"""Image captioning: the model describes each image; CIDEr-D over the whole split.

Scoring follows ``COCOEvalCap`` (salaniz/pycocoevalcap @ ad63453 ``eval.py``): every scored image's raw
references and the one generated caption are PTB-tokenised by pycocoevalcap's jar, and CIDEr-D's
document frequencies come from the references of *all* scored images, so the number depends on
the whole split and is computed once (never averaged over batches). ``full_scores: true`` adds
BLEU-1..4, METEOR and ROUGE-L from the same tokenisation pass (METEOR starts its own JVM).

A sample whose generation failed is left out of the CIDEr corpus (and counted in ``n_errors``;
the runner's ``max_error_rate`` bounds how many may be); an empty caption is a valid answer that
scores 0. The generated caption is the model's text cut at the ``until`` strings and stripped,
nothing more (lmms-eval passes the raw generation to pycocoevalcap).

Every run writes the COCO results file ``[{"image_id", "caption"}]`` (the format the COCO
caption server takes for test2014) as the artifact ``submission_file`` (the runner writes it); a split
without references (``image_info_test2014.json``) is exported only, with no metric.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, ClassVar, Mapping, Sequence

from mio_eval.generation import generation_settings
from mio_eval.metrics.base import MetricResult
from mio_eval.metrics.caption import CiderD, coco_caption_scores
from mio_eval.tasks.base import Generated, InvalidOutput, ScoreReport
from mio_eval.tasks.image_prompts import check_template, render, stop_at
from mio_eval.types import Image, Modality, Output, Request, Sample

__all__ = ["CaptionTask"]

_FULL_PROVENANCE = "pycocoevalcap 1.2 Bleu(4) / Meteor / Rouge after one PTB tokenisation pass"


class CaptionTask:
    output_modality = Modality.TEXT
    scoring_keys: ClassVar[tuple[str, ...]] = ("full_scores", "submission_file")

    def __init__(
        self,
        *,
        name: str,
        loader: Callable[[], list[Sample]],
        prompt: str = "{image}",
        generation: Mapping[str, Any] | None = None,
        until: Sequence[str] = (),
        full_scores: bool = False,
        submission_file: str = "captions_results.json",
    ) -> None:
        self.name = name
        self.loader = loader
        self.prompt = check_template(prompt, (), what="captioning prompt")
        self.generation = generation_settings(generation)
        self.until = tuple(until)
        self.full_scores = bool(full_scores)
        self.submission_file = submission_file
        has_text = bool(self.prompt.replace("{image}", ""))
        self.input_modalities = frozenset({Modality.IMAGE} | ({Modality.TEXT} if has_text else set()))

    def samples(self) -> list[Sample]:
        return self.loader()

    def request(self, sample: Sample) -> Request:
        images = [p for p in sample.parts if isinstance(p, Image)]
        return Request(sample_id=sample.id, parts=render(self.prompt, images),
                       output_modality=Modality.TEXT, generation=self.generation, kind="caption")

    def prediction(self, sample: Sample, output: Output) -> str:
        if output.text is None:
            kinds = ", ".join(sorted(m.value for m in output.modalities())) or "nothing"
            raise InvalidOutput(f"expected a caption, got {kinds}")
        return stop_at(output.text, self.until).strip()

    def score(self, generated: Sequence[Generated], *, work_dir: Path) -> ScoreReport:
        ok = [g for g in generated if g.error is None]
        scored = [g for g in ok if g.sample.targets]
        results = [{"image_id": g.sample.metadata.get("image_id", g.sample.id), "caption": g.prediction} for g in ok]

        metrics: list[MetricResult] = []
        per_image: dict[str, float] = {}
        if scored:
            cider = CiderD()
            cider.update([g.sample.id for g in scored], [list(g.sample.targets) for g in scored],
                         [g.prediction for g in scored])
            metrics.append(cider.compute())
            per_image = {str(k): v for k, v in cider.per_image.items()}
            if self.full_scores:
                full = coco_caption_scores({g.sample.id: list(g.sample.targets) for g in scored},
                                           {g.sample.id: g.prediction for g in scored})
                for key, value in full.items():
                    if key != "CIDEr":  # the CiderD result above is the same number
                        metrics.append(MetricResult(name=key.lower(), value=value, higher_is_better=True,
                                                    variant="pycocoevalcap", provenance=_FULL_PROVENANCE,
                                                    scale=100.0, n=len(scored)))
        rows = []
        for g in generated:
            row: dict[str, Any] = {"id": g.sample.id, "error": g.error,
                                   "image_id": g.sample.metadata.get("image_id", g.sample.id)}
            if g.error is None:
                row["prediction"] = g.prediction
                row["cider"] = per_image.get(g.sample.id) if g.sample.targets else None
                row["references"] = list(g.sample.targets)
            rows.append(row)
        return ScoreReport(
            metrics=tuple(metrics),
            per_sample=tuple(rows),
            settings={"prompt": self.prompt, "until": list(self.until), "full_scores": self.full_scores,
                      "submission_file": self.submission_file, "n_with_references": len(scored),
                      "corpus": "CIDEr-D document frequencies over all scored images"},
            artifacts={self.submission_file: results},
        )
