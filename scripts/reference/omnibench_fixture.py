"""Write ``tests/reference/omnibench_reference.json``: OmniBench's official scorer on a fixture of answers.

Reference: multimodal-art-projection/OmniBench ``inference/calculate_metrics.py`` (file version
335f0ba58ebb4893bbe85187f16dafe76a78b65f) and ``inference/answer_parsing.py`` (file version
21a7f7523baad7b0ada093ec7d036c0e017bd571), never committed. ``calculate_metrics.py`` runs unchanged as
a subprocess (``--input-file`` a JSONL in the release's row format, ``--inference-file`` the responses);
its printed counts are parsed. Per item, its own ``parse_multi_choice_response(...,
default_answer='N/A')`` gives the parsed reply and the parsed gold, exactly as the script calls it.

Usage: ``python scripts/reference/omnibench_fixture.py --checkout DIR`` (a checkout of the repository;
its git history is over 1 GB of media) or ``--cache DIR`` to clone it.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(Path(__file__).resolve().parent))

OUT = ROOT / "tests" / "reference" / "omnibench_reference.json"
REPO = "multimodal-art-projection/OmniBench"
FILES = {"inference/calculate_metrics.py": "335f0ba58ebb4893bbe85187f16dafe76a78b65f",
         "inference/answer_parsing.py": "21a7f7523baad7b0ada093ec7d036c0e017bd571"}
# Gold texts must be parsable by the official parser (over five words, or holding "X "), else
# calculate_metrics.py stops at its assert; "A man is answering some questions" is parsed as A.
ITEMS = [  # (audio type, question, options, gold index)
    ("speech", "What is the man doing?", ["He is cooking dinner at home", "He is reading a long book",
                                          "A man is answering some questions", "He is sleeping on the sofa"], 2),
    ("speech", "Who speaks first?", ["The woman in the red coat", "The man standing behind the counter",
                                     "The child near the window", "Nobody says anything at all"], 1),
    ("sound event", "What made the sound?", ["A dog barking in the yard", "A car horn on the street",
                                             "Rain falling on the roof", "A door slamming in the wind"], 0),
    ("sound event", "Where is this?", ["In a busy restaurant kitchen at noon", "On a crowded city street corner",
                                       "Deep in a quiet pine forest", "On a small boat at sea"], 3),
    ("music", "Which instrument leads?", ["A grand piano plays the melody", "A solo violin plays the melody",
                                          "The drums carry the whole melody", "A wooden flute plays the melody"], 2),
    ("music", "What is the mood?", ["It sounds sad and very slow", "It sounds happy and quite fast",
                                    "It sounds angry and really loud", "It sounds calm and rather soft"], 3),
]


def responses(options: list[str], gold: int) -> list[str]:
    L, wrong = "ABCD"[gold], "ABCD"[(gold + 1) % 4]
    return [L, f"({L})", f"{L}. {options[gold]}", f"The answer is {L}.", f"The answer is ({L}).", f"Answer: {L}",
            f"{L}) {options[gold]}", options[gold], f"I believe the correct choice here is {options[gold].lower()} for sure.",
            wrong, f"({wrong}) {options[(gold + 1) % 4]}", "I cannot tell from the audio.", f"{L} or {wrong}",
            f"Not {wrong}, it is {L}", f"**{L}**", f"{L.lower()}"]


def main(argv=None) -> int:
    from _sources import arguments

    args = arguments(__doc__, argv, checkout=True)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        if args.checkout:
            for path in FILES:
                (tmp / path).parent.mkdir(parents=True, exist_ok=True)
                (tmp / path).write_text((args.checkout / path).read_text())
        else:
            from _sources import show, source

            for path, commit in FILES.items():
                (tmp / path).parent.mkdir(parents=True, exist_ok=True)
                (tmp / path).write_text(show(source(REPO, commit, cache=args.cache), commit, path))
        rows, results = [], []
        for audio_type, question, options, gold in ITEMS:
            for response in responses(options, gold):
                rows.append({"question": question, "audio type": audio_type, "options": options, "answer": options[gold]})
                results.append({"question": question, "response": response})
        (tmp / "data.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
        (tmp / "responses.json").write_text(json.dumps(results))
        printed = subprocess.run([sys.executable, "inference/calculate_metrics.py", "--input-file", "data.jsonl",
                                  "--inference-file", "responses.json"], cwd=tmp, check=True, capture_output=True,
                                 text=True).stdout
        sys.path.insert(0, str(tmp / "inference"))
        from answer_parsing import parse_multi_choice_response

        per_item = []
        for row, result in zip(rows, results):
            index2ans = dict(zip("ABCD", row["options"]))
            per_item.append({"parsed": parse_multi_choice_response(result["response"], list("ABCD"), index2ans, default_answer="N/A"),
                             "gold": parse_multi_choice_response(row["answer"], list("ABCD"), index2ans, default_answer="N/A")})
    counts = re.search(r"Correct response: (\d+); Invalid response: (\d+), Wrong response: (\d+)", printed)
    by_type = {m.group(1): [float(x) for x in m.group(2, 3, 4)]
               for m in re.finditer(r"^(music|speech|sound event): ([\d.]+), ([\d.]+), ([\d.]+)$", printed, re.M)}
    fixture = {"reference": {REPO: FILES}, "script": "scripts/reference/omnibench_fixture.py",
               "rows": rows, "responses": [r["response"] for r in results], "per_item": per_item,
               "printed": {"correct": int(counts.group(1)), "invalid": int(counts.group(2)), "wrong": int(counts.group(3)),
                           "by_audio_type": by_type}}
    OUT.write_text(json.dumps(fixture, indent=1) + "\n")
    print(printed)
    print(f"wrote {OUT}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
