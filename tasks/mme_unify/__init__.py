"""MME-Unify (Xie et al. 2025, aba122/MME-Unify @ 0956091): understanding, generation and unify
task families, one module each; the benchmark's scoring rules (0-100 mapping, US / GS / Unify-S /
Overall) live in :mod:`mio_eval.metrics.mme_unify`, the data reader in
:mod:`mio_eval.tasks.loaders.mme_unify`.

* :class:`MMEUnifyUnderstandingTask` (``understanding.py``): SIPU / MITIU / VPU on the shared
  multiple-choice core (:mod:`mio_eval.tasks.multiple_choice`).
* :class:`MMEUnifyGenerationTask` (``generation.py``): FIR / TIE / TIG images or CIVG / TVG / VP videos.
* :class:`MMEUnifyUnifyTask` (``unify.py``): IEE / CSQ / AL / SD and the VCoT maze walk.

Each scoring pass also writes the benchmark's output template (``evaluation/output_test_template
.json``: the original item plus ``output``) to ``<run dir>/mme_unify_<family>_output.json``.
Every name importable from the former single module is re-exported here.
"""

from mio_eval.metrics.mme_unify import (NORMALIZATION, lpips_score, mme_unify_scores, psnr_score,
                                        scores_from_metrics)
from mio_eval.tasks.mme_unify.common import DEFAULT_PROMPTS, read_official_prompts
from mio_eval.tasks.mme_unify.generation import IMAGE_SUBTASKS, VIDEO_SUBTASKS, MMEUnifyGenerationTask
from mio_eval.tasks.mme_unify.understanding import MMEUnifyUnderstandingTask
from mio_eval.tasks.mme_unify.unify import ChoiceLabel, ListPosition, MMEUnifyUnifyTask, parse_vcot

# The former module's private names, for code written against it.
_psnr_score, _lpips_score = psnr_score, lpips_score

__all__ = [
    "MMEUnifyUnderstandingTask",
    "MMEUnifyGenerationTask",
    "MMEUnifyUnifyTask",
    "mme_unify_scores",
    "scores_from_metrics",
    "read_official_prompts",
    "parse_vcot",
    "NORMALIZATION",
    "DEFAULT_PROMPTS",
    "IMAGE_SUBTASKS",
    "VIDEO_SUBTASKS",
    "ChoiceLabel",
    "ListPosition",
]
