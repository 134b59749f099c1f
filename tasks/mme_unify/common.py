"""What the three MME-Unify task classes share: the instructions (aba122/MME-Unify @ 0956091
``Prompt.txt``: paraphrased defaults, the reader of a local copy of the official file, per-key
overrides), the submission export and the output's media path."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

from mio_eval.errors import ConfigError
from mio_eval.jsonl import read_lines
from mio_eval.types import Output

__all__ = ["DEFAULT_PROMPTS", "read_official_prompts", "build_prompts", "first_media", "export_submission"]

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


def build_prompts(prompts_file: str | None, overrides: Mapping[str, str] | None) -> dict[str, str]:
    """The defaults, then the official file's sections, then ``overrides``."""
    prompts = dict(DEFAULT_PROMPTS)
    if prompts_file:
        prompts.update(read_official_prompts(prompts_file))
    prompts.update(overrides or {})
    return prompts



def export_submission(family: str, items: list[dict[str, Any]], settings: dict[str, Any]) -> dict[str, Any]:
    """The benchmark's output template (``evaluation/output_test_template.json``: the original item
    plus ``output``) as an artifact (the runner writes it beside metrics.json as
    ``mme_unify_<family>_output.json``), named in ``settings["submission"]``."""
    name = f"mme_unify_{family}_output.json"
    settings["submission"] = name
    return {name: items}


def first_media(output: Output, kind: type) -> str | None:
    """The path of the output's first ``kind`` part, or None."""
    return next((p.path for p in output.media if isinstance(p, kind)), None)

