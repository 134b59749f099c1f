"""Write ``tests/reference/vqa_reference.json.gz``: the original VQA scorers' per-question accuracy
on the seeded questions of ``tests/reference/vqa_cases.py``.

References (read at these exact commits, never committed):

* ``vqa2016``: GT-Vision-Lab/VQA 458a8b268b1a239dc388e0af4423f3fe7477b04f
  ``PythonEvaluationTools/vqaEvaluation/vqaEval.py``
* ``vqa2021``: GT-Vision-Lab/VQA a013f0043c1e2cdc995922dfe257f7149aa9af06 (same file)
* ``lmms``: EvolvingLMMs-Lab/lmms-eval 75571cfe ``lmms_eval/tasks/vqav2/utils.py``
* ``lmms_tokenized``: lmms-eval 75571cfe ``ok_vqa/utils.py`` and ``vizwiz_vqa/utils.py`` (both run;
  they must agree)
* ``lmms_2024``: lmms-eval 7548ebe1 ``vqav2/utils.py`` (the last change before the MIO paper,
  2024-09-01; the file stayed so until b439d82, 2025-07-16)

``vqaEval.py`` is Python 2: its two ``print "..."`` statements are rewritten as calls, nothing
else; it runs under Python 3 (as LAVIS and lmms-eval run their copies; under Python 2 ``\\d`` would
match ASCII digits only). ``VQAEval.evaluate`` runs unchanged on ``VQA``-like objects holding the
questions; ``setEvalQA`` is overridden to keep the unrounded per-question accuracy (the original
rounds it to 2 decimals for display). lmms-eval's ``process_results`` functions run unchanged on
docs shaped like its HF datasets (VQAv2 answer dicts with ``answer_id``; OK-VQA/VizWiz strings);
``loguru`` is stubbed if absent (only a logger is imported).

Usage: ``python scripts/reference/vqa_fixture.py [--cache DIR]``; set ``REF_GT_VISION_LAB_VQA`` /
``REF_EVOLVINGLMMS_LAB_LMMS_EVAL`` to local clones to skip cloning.
"""

from __future__ import annotations

import gzip
import json
import logging
import re
import sys
import tempfile
import types
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _sources import arguments, extract, show, source  # noqa: E402
from reference.vqa_cases import N_RANDOM, SEED, digest, questions  # noqa: E402

OFFICIAL = {"vqa2016": "458a8b268b1a239dc388e0af4423f3fe7477b04f", "vqa2021": "a013f0043c1e2cdc995922dfe257f7149aa9af06"}
LMMS = {"lmms": "75571cfe", "lmms_tokenized": "75571cfe", "lmms_2024": "7548ebe1"}
OUT = ROOT / "tests" / "reference" / "vqa_reference.json.gz"


def official_scores(git_dir: Path, commit: str, pairs) -> list[float]:
    code = show(git_dir, commit, "PythonEvaluationTools/vqaEvaluation/vqaEval.py")
    code, n = re.subn(r'^(\s*)print "(.*)"\s*$', r'\1print("\2")', code, flags=re.M)
    assert n == 2, n
    module = types.ModuleType(f"vqaEval_{commit[:7]}")
    exec(compile(code, f"vqaEval.py@{commit[:7]}", "exec"), module.__dict__)

    class Holder:
        def __init__(self, qa):
            self.qa = qa

        def getQuesIds(self):
            return list(self.qa)

    gts = {i: {"question_type": "q", "answer_type": "a",
               "answers": [{"answer": a, "answer_confidence": "yes", "answer_id": j + 1} for j, a in enumerate(ans)]}
           for i, (_, ans) in enumerate(pairs)}
    res = {i: {"answer": pred} for i, (pred, _) in enumerate(pairs)}
    raw: dict[int, float] = {}

    class Eval(module.VQAEval):
        def setEvalQA(self, quesId, acc):
            raw[quesId] = acc

        def updateProgress(self, progress):
            pass

    Eval(Holder(gts), Holder(res)).evaluate()
    return [raw[i] for i in range(len(pairs))]


def lmms_module(git_dir: Path, commit: str, task: str, scratch: Path):
    root = extract(git_dir, commit, ["lmms_eval/tasks/_task_utils", f"lmms_eval/tasks/{task}/utils.py"],
                   scratch / f"lmms-{commit}-{task}")
    for pkg in ("lmms_eval", "lmms_eval/tasks", f"lmms_eval/tasks/{task}"):
        (root / pkg / "__init__.py").touch()
    if "loguru" not in sys.modules:
        try:
            import loguru  # noqa: F401
        except ImportError:
            sys.modules["loguru"] = types.SimpleNamespace(logger=logging.getLogger("loguru"))
    for name in [m for m in sys.modules if m == "lmms_eval" or m.startswith("lmms_eval.")]:
        del sys.modules[name]
    sys.path.insert(0, str(root))
    try:
        __import__(f"lmms_eval.tasks.{task}.utils")
        return sys.modules[f"lmms_eval.tasks.{task}.utils"]
    finally:
        sys.path.remove(str(root))


def lmms_scores(mod, task: str, pairs) -> list[float]:
    fn = getattr(mod, f"{task}_process_results")
    out = []
    for i, (pred, ans) in enumerate(pairs):
        if task == "vqav2":
            answers = [{"answer": a, "answer_confidence": "yes", "answer_id": j + 1} for j, a in enumerate(ans)]
        else:
            answers = list(ans)
        out.append(fn({"question_id": i, "answers": answers}, [pred])["exact_match"])
    return out


def encode(scores: list[float]) -> dict:
    """Distinct values (repr) + one index per question: compact and exact."""
    values = sorted(set(scores))
    index = {v: k for k, v in enumerate(values)}
    return {"values": [repr(v) for v in values], "index": "".join(chr(48 + index[s]) for s in scores)}


def main(argv=None) -> int:
    args = arguments(__doc__, argv)
    pairs = questions(SEED, N_RANDOM)
    vqa_git = source("GT-Vision-Lab/VQA", OFFICIAL["vqa2016"], cache=args.cache)
    source("GT-Vision-Lab/VQA", OFFICIAL["vqa2021"], cache=args.cache)
    lmms_git = source("EvolvingLMMs-Lab/lmms-eval", LMMS["lmms"], cache=args.cache)
    source("EvolvingLMMs-Lab/lmms-eval", LMMS["lmms_2024"], cache=args.cache)
    scores = {v: official_scores(vqa_git, c, pairs) for v, c in OFFICIAL.items()}
    with tempfile.TemporaryDirectory() as tmp:
        scratch = Path(tmp)
        scores["lmms"] = lmms_scores(lmms_module(lmms_git, LMMS["lmms"], "vqav2", scratch), "vqav2", pairs)
        ok = lmms_scores(lmms_module(lmms_git, LMMS["lmms_tokenized"], "ok_vqa", scratch), "ok_vqa", pairs)
        viz = lmms_scores(lmms_module(lmms_git, LMMS["lmms_tokenized"], "vizwiz_vqa", scratch), "vizwiz_vqa", pairs)
        assert ok == viz, "ok_vqa and vizwiz_vqa disagree"
        scores["lmms_tokenized"] = ok
        scores["lmms_2024"] = lmms_scores(lmms_module(lmms_git, LMMS["lmms_2024"], "vqav2", scratch), "vqav2", pairs)
    fixture = {
        "generator": "tests/reference/vqa_cases.py", "seed": SEED, "n_random": N_RANDOM, "n": len(pairs),
        "digest": digest(pairs),
        "references": {**{v: f"GT-Vision-Lab/VQA@{c} PythonEvaluationTools/vqaEvaluation/vqaEval.py" for v, c in OFFICIAL.items()},
                       "lmms": f"EvolvingLMMs-Lab/lmms-eval@{LMMS['lmms']} lmms_eval/tasks/vqav2/utils.py",
                       "lmms_tokenized": f"EvolvingLMMs-Lab/lmms-eval@{LMMS['lmms_tokenized']} lmms_eval/tasks/ok_vqa/utils.py (= vizwiz_vqa/utils.py)",
                       "lmms_2024": f"EvolvingLMMs-Lab/lmms-eval@{LMMS['lmms_2024']} lmms_eval/tasks/vqav2/utils.py"},
        "scores": {v: encode(s) for v, s in scores.items()},
    }
    with gzip.open(OUT, "wt", encoding="utf-8", compresslevel=9) as fh:
        json.dump(fixture, fh, separators=(",", ":"))
    print(f"wrote {OUT} ({OUT.stat().st_size} bytes, {len(pairs)} questions)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
