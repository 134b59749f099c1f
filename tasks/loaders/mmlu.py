"""MMLU (Hendrycks et al.) from a local copy, in either of its two distributions.

* **Original CSV release** (``data.tar`` of hendrycks/test): ``<root>/data/dev/<subject>_dev.csv`` and
  ``<root>/data/test/<subject>_test.csv`` (``<root>`` may also be the ``data`` folder itself). No
  header, six columns: question, the four options, the answer letter. Read with the ``csv`` module,
  so every cell stays the exact string in the file. (The reference ``evaluate.py`` reads with
  ``pandas.read_csv``, which turns option cells such as ``0.50`` into ``0.5`` and ``None``/``NA`` into
  ``nan`` before formatting them; that coercion is not replicated.)
* **Hugging Face ``cais/mmlu``** hub snapshot: one parquet config per subject
  (``<root>/<subject>/test-*.parquet``, ``dev-*.parquet``) and/or the ``all`` config
  (``<root>/all/test-*.parquet``), or a ``DatasetDict.save_to_disk`` folder of the ``all`` config.
  Columns ``question``, ``subject``, ``choices`` (4 strings), ``answer`` (int 0-3).

Each test item becomes a ``Sample`` (id ``<subject>/<row>``) whose metadata carries its subject,
category and the subject's ``dev`` rows in file order (``fewshot``; the task takes the first k).
Samples are ordered by subject name, then file order, as ``evaluate.py`` iterates.

The subject -> subcategory -> category maps are hendrycks/test ``categories.py`` (@4450500) as data;
categories are reported under lm-eval's group slugs (``stem``, ``humanities``, ``social_sciences``,
``other``).
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any, Mapping, Sequence

from mio_eval.errors import ConfigError
from mio_eval.tasks.loaders._data import data_not_found
from mio_eval.tasks.loaders.hf import read_hf_table
from mio_eval.types import Sample, Text

__all__ = [
    "MMLULoader",
    "SUBJECTS",
    "SUBCATEGORIES",
    "CATEGORIES",
    "CATEGORY_NAMES",
    "TEST_SIZES",
    "TEST_SIZE",
    "LETTERS",
    "category_of",
]

LETTERS = ("A", "B", "C", "D")

# hendrycks/test categories.py: subject -> subcategory.
SUBCATEGORIES: Mapping[str, str] = {
    "abstract_algebra": "math",
    "anatomy": "health",
    "astronomy": "physics",
    "business_ethics": "business",
    "clinical_knowledge": "health",
    "college_biology": "biology",
    "college_chemistry": "chemistry",
    "college_computer_science": "computer science",
    "college_mathematics": "math",
    "college_medicine": "health",
    "college_physics": "physics",
    "computer_security": "computer science",
    "conceptual_physics": "physics",
    "econometrics": "economics",
    "electrical_engineering": "engineering",
    "elementary_mathematics": "math",
    "formal_logic": "philosophy",
    "global_facts": "other",
    "high_school_biology": "biology",
    "high_school_chemistry": "chemistry",
    "high_school_computer_science": "computer science",
    "high_school_european_history": "history",
    "high_school_geography": "geography",
    "high_school_government_and_politics": "politics",
    "high_school_macroeconomics": "economics",
    "high_school_mathematics": "math",
    "high_school_microeconomics": "economics",
    "high_school_physics": "physics",
    "high_school_psychology": "psychology",
    "high_school_statistics": "math",
    "high_school_us_history": "history",
    "high_school_world_history": "history",
    "human_aging": "health",
    "human_sexuality": "culture",
    "international_law": "law",
    "jurisprudence": "law",
    "logical_fallacies": "philosophy",
    "machine_learning": "computer science",
    "management": "business",
    "marketing": "business",
    "medical_genetics": "health",
    "miscellaneous": "other",
    "moral_disputes": "philosophy",
    "moral_scenarios": "philosophy",
    "nutrition": "health",
    "philosophy": "philosophy",
    "prehistory": "history",
    "professional_accounting": "other",
    "professional_law": "law",
    "professional_medicine": "health",
    "professional_psychology": "psychology",
    "public_relations": "politics",
    "security_studies": "politics",
    "sociology": "culture",
    "us_foreign_policy": "politics",
    "virology": "health",
    "world_religions": "philosophy",
}

# hendrycks/test categories.py: category -> subcategories, keyed by lm-eval's group slug.
CATEGORIES: Mapping[str, tuple[str, ...]] = {
    "stem": ("physics", "chemistry", "biology", "computer science", "math", "engineering"),
    "humanities": ("history", "philosophy", "law"),
    "social_sciences": ("politics", "culture", "economics", "geography", "psychology"),
    "other": ("other", "business", "health"),
}
# The slugs' names in categories.py (and in the paper's tables).
CATEGORY_NAMES: Mapping[str, str] = {
    "stem": "STEM",
    "humanities": "humanities",
    "social_sciences": "social sciences",
    "other": "other (business, health, misc.)",
}

SUBJECTS: tuple[str, ...] = tuple(sorted(SUBCATEGORIES))

# Rows per subject in the test split (both distributions); they sum to 14042.
TEST_SIZES: Mapping[str, int] = dict(zip(SUBJECTS, (
    100, 135, 152, 100, 265, 144, 100, 100, 100, 173, 102, 100, 235, 114, 145, 378, 126, 100, 310, 203,
    100, 165, 198, 193, 390, 270, 238, 151, 545, 216, 204, 237, 223, 131, 121, 108, 163, 112, 103, 234,
    100, 783, 346, 895, 306, 311, 324, 282, 1534, 272, 612, 110, 245, 201, 100, 166, 171)))
TEST_SIZE = 14042


def category_of(subject: str) -> str:
    """The category slug of a subject (``high_school_biology`` -> ``stem``)."""
    try:
        sub = SUBCATEGORIES[subject]
    except KeyError:
        raise ConfigError(f"unknown MMLU subject {subject!r}") from None
    return next(cat for cat, subs in CATEGORIES.items() if sub in subs)


_Row = tuple[str, tuple[str, ...], int]  # question, 4 options, answer index


def _csv_dir(root: Path, split: str) -> Path | None:
    for candidate in (root / "data" / split, root / split):
        if candidate.is_dir() and any(candidate.glob(f"*_{split}.csv")):
            return candidate
    return None


def _read_csv(path: Path) -> list[_Row]:
    rows = []
    try:
        with open(path, encoding="utf-8", newline="") as fh:
            for n, cells in enumerate(csv.reader(fh), 1):
                if len(cells) != 6:
                    raise ConfigError(f"{path}:{n}: expected 6 columns (question, A-D, answer), got {len(cells)}")
                answer = cells[5].strip()
                if answer not in LETTERS:
                    raise ConfigError(f"{path}:{n}: answer must be one of A-D, got {cells[5]!r}")
                rows.append((cells[0], tuple(cells[1:5]), LETTERS.index(answer)))
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise ConfigError(f"cannot read {path}: {type(exc).__name__}: {exc}") from None
    return rows


def _hf_row(row: Mapping[str, Any], where: str) -> _Row:
    choices, answer = row.get("choices"), row.get("answer")
    if not isinstance(choices, (list, tuple)) or len(choices) != 4:
        raise ConfigError(f"{where}: 'choices' must hold 4 options, got {choices!r}")
    if isinstance(answer, str) and answer in LETTERS:  # tolerate letter answers
        answer = LETTERS.index(answer)
    if not isinstance(answer, int) or isinstance(answer, bool) or not 0 <= answer < 4:
        raise ConfigError(f"{where}: 'answer' must be an int 0-3, got {answer!r}")
    if not isinstance(row.get("question"), str):
        raise ConfigError(f"{where}: 'question' must be a string, got {type(row.get('question')).__name__}")
    return row["question"], tuple(str(c) for c in choices), answer


class MMLULoader:
    """MMLU test items with their subject's dev rows; ``format`` auto-detects CSV vs HF.

    ``subjects`` restricts to some subjects (default: every subject found). ``expected_size``
    (14042 for the full test split) is checked when all 57 subjects are loaded, so a truncated
    download fails loudly instead of scoring a subset.
    """

    def __init__(
        self,
        *,
        root: str,
        format: str = "auto",
        split: str = "test",
        fewshot_split: str = "dev",
        subjects: Sequence[str] | None = None,
        expected_size: int | None = None,
    ) -> None:  # options spelled out (not **kwargs): the signature is the YAML's contract
        if format not in ("auto", "csv", "hf"):
            raise ConfigError(f"MMLU loader format must be auto, csv or hf, got {format!r}")
        self.root = Path(root)
        self.format = format
        self.split = split
        self.fewshot_split = fewshot_split
        self.subjects = tuple(subjects) if subjects else None
        for subject in self.subjects or ():
            category_of(subject)
        self.expected_size = expected_size

    # -- reading --

    def _detect(self) -> str:
        if self.format != "auto":
            return self.format
        if _csv_dir(self.root, self.split) is not None:
            return "csv"
        return "hf"

    def _csv(self, split: str) -> dict[str, list[_Row]]:
        folder = _csv_dir(self.root, split)
        if folder is None:
            raise data_not_found(f"MMLU CSV split {split!r}", self.root, key="root",
                                 expected=f"<root>/data/{split}/<subject>_{split}.csv")
        suffix = f"_{split}.csv"
        found = {p.name[: -len(suffix)]: p for p in folder.glob(f"*{suffix}")}
        return {subject: _read_csv(path) for subject, path in found.items()
                if self.subjects is None or subject in self.subjects}

    def _hf(self, split: str) -> dict[str, list[_Row]]:
        root = self.root
        if not root.exists():
            raise data_not_found("MMLU data", root, key="root",
                                 expected=f"<root>/data/{split}/<subject>_{split}.csv or a cais/mmlu copy")
        wanted = list(self.subjects or SUBJECTS)
        by_subject: dict[str, list[_Row]] = {}
        per_subject = [s for s in wanted if (root / s).is_dir()]
        if (root / "all").is_dir() or (root / "dataset_dict.json").is_file() or not per_subject:
            source = root / "all" if (root / "all").is_dir() else root
            rows = read_hf_table(source, split, columns=["question", "subject", "choices", "answer"])
            for n, row in enumerate(rows):
                subject = str(row["subject"])
                if self.subjects is None or subject in self.subjects:
                    by_subject.setdefault(subject, []).append(_hf_row(row, f"{source} {split} row {n}"))
            return by_subject
        for subject in per_subject:
            rows = read_hf_table(root / subject, split, columns=["question", "choices", "answer"])
            by_subject[subject] = [_hf_row(r, f"{root / subject} {split} row {n}") for n, r in enumerate(rows)]
        return by_subject

    def _read(self, split: str) -> dict[str, list[_Row]]:
        data = self._csv(split) if self._detect() == "csv" else self._hf(split)
        for subject in data:
            category_of(subject)  # unknown subject -> ConfigError
        return data

    # -- samples --

    def __call__(self) -> list[Sample]:
        tests = self._read(self.split)
        if self.subjects is not None:
            absent = [s for s in self.subjects if s not in tests]
            if absent:
                raise ConfigError(f"MMLU subject(s) not found in {self.root}: {', '.join(absent)}")
        if not tests or not any(tests.values()):
            raise ConfigError(f"no MMLU {self.split} items under {self.root}")
        self._check_size(tests)
        shots = self._read(self.fewshot_split) if self.fewshot_split else {}
        samples = []
        for subject in sorted(tests):
            fewshot = tuple({"question": q, "choices": c, "answer": a} for q, c, a in shots.get(subject, ()))
            category = category_of(subject)
            for i, (question, choices, answer) in enumerate(tests[subject]):
                samples.append(Sample(
                    id=f"{subject}/{i:04d}",
                    parts=(Text(question),),
                    targets=(LETTERS[answer],),
                    choices=choices,
                    metadata={"subject": subject, "category": category, "subcategory": SUBCATEGORIES[subject],
                              "answer": answer, "fewshot": fewshot},
                ))
        return samples

    def _check_size(self, tests: Mapping[str, list[_Row]]) -> None:
        if self.expected_size is None or self.subjects is not None or set(tests) != set(SUBJECTS):
            return
        total = sum(len(rows) for rows in tests.values())
        if total != self.expected_size:
            off = [f"{s} {len(tests[s])}/{TEST_SIZES[s]}" for s in SUBJECTS
                   if self.split == "test" and len(tests[s]) != TEST_SIZES[s]]
            detail = f" (subjects off: {', '.join(off[:5])})" if off else ""
            raise ConfigError(f"MMLU {self.split} under {self.root} has {total} items, expected "
                              f"{self.expected_size}{detail}; set task.loader.expected_size=null to accept it")
