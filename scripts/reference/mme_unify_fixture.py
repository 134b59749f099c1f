"""Write ``tests/reference/mme_unify_understanding_reference.json``: MME-Unify's official understanding
scorer on a fixture of raw replies.

Reference: aba122/MME-Unify @095609165e55a230c85c6f77f25f21aa77f51a66 ``evaluate/Evaluate_Understanding.py``
(never committed): it runs unchanged as a subprocess on a predictions file in its input format
(``category``, ``answer``, ``output``) and its printed per-category accuracies are parsed; its own
``calculate_accuracy`` (imported from the same file) gives the overall accuracy it does not print.
Only the understanding family is covered; the generation and unify scorers are not compared here.

Usage: ``python scripts/reference/mme_unify_fixture.py [--cache DIR]`` (``REF_ABA122_MME_UNIFY`` = a local clone).
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import tempfile
import types
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(Path(__file__).resolve().parent))
from _sources import arguments, show, source  # noqa: E402

REPO, COMMIT = "aba122/MME-Unify", "095609165e55a230c85c6f77f25f21aa77f51a66"
OUT = ROOT / "tests" / "reference" / "mme_unify_understanding_reference.json"
CATEGORIES = {"SIPU": "Single_Image_Perception_and_Understanding", "MITIU": "Multiple_Images_and_Text_Interlaced"}
# (subtask, gold letter, raw reply): exact letters, replies with extra text, wrong letters, empty.
REPLIES = [("SIPU", "C", "C"), ("SIPU", "B", "B"), ("SIPU", "A", "Answer: A"), ("SIPU", "D", "(D)"),
           ("SIPU", "C", "c"), ("SIPU", "B", "A"), ("SIPU", "E", "E."), ("SIPU", "A", ""),
           ("MITIU", "D", "D"), ("MITIU", "A", "The answer is A."), ("MITIU", "B", "B"), ("MITIU", "C", "D")]


def main(argv=None) -> int:
    args = arguments(__doc__, argv)
    code = show(source(REPO, COMMIT, cache=args.cache), COMMIT, "evaluate/Evaluate_Understanding.py")
    items = [{"category": CATEGORIES[sub], "answer": gold, "output": reply, "question_id": i}
             for i, (sub, gold, reply) in enumerate(REPLIES)]
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        (tmp / "Evaluate_Understanding.py").write_text(code)
        (tmp / "predictions.json").write_text(json.dumps(items))
        printed = subprocess.run([sys.executable, "Evaluate_Understanding.py", "predictions.json"], cwd=tmp,
                                 check=True, capture_output=True, text=True).stdout
    module = types.ModuleType("Evaluate_Understanding")
    exec(compile(code, "Evaluate_Understanding.py", "exec"), module.__dict__)
    overall, per_category = module.calculate_accuracy(items)
    shown = {m.group(1): float(m.group(2)) for m in re.finditer(r"^(\S+): ([\d.]+)%$", printed, re.M)}
    fixture = {"reference": f"{REPO}@{COMMIT} evaluate/Evaluate_Understanding.py", "script": "scripts/reference/mme_unify_fixture.py",
               "items": items, "overall": overall, "per_category": per_category, "printed_percent": shown}
    OUT.write_text(json.dumps(fixture, indent=1) + "\n")
    print(printed, f"overall {overall}", f"wrote {OUT}", sep="\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
