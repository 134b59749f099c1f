"""Readers for prediction files written by other evaluation tools, for the ``replay`` adapter.

Each reader turns a file (or a folder of files) into ``{tool id record: Answer}`` rows; the
adapter maps each row to a mio-eval sample id with an id template (see :func:`render_id`). The
on-disk formats, as the tools write them (checked against their code):

* ``lmms_eval``: lmms-eval ``--log_samples``, ``<output>/<model>/<date>_samples_<task>.jsonl``
  (EvolvingLMMs-Lab/lmms-eval @75571cf, ``loggers/evaluation_tracker.py::save_results_samples``):
  one JSON line per doc with ``doc_id``, ``target``, ``input`` (the prompt), ``filtered_resps``
  (one string for a single-request doc; a list of ``[loglikelihood, is_greedy]`` string pairs
  for a multiple-choice doc), ``resps`` when it differs, ``doc_hash`` and each metric's
  per-sample payload (``coco_CIDEr: {image_id, pred, ...}``, ``submission: {question_id,
  answer}``, ``seed_all: {question_id, ...}``). Since v0.4 ``doc`` and ``arguments`` are dropped;
  older versions kept ``doc`` (``{doc[question_id]}`` works there).
* ``lm_eval``: lm-evaluation-harness ``--log_samples``, ``samples_<task>_<date>.jsonl``
  (EleutherAI/lm-evaluation-harness @4e7e0d4, same function): ``doc_id``, ``doc``, ``target``,
  ``arguments`` (``{"gen_args_<i>": {"arg_0": context, "arg_1": continuation}}``), ``resps``,
  ``filtered_resps`` (values stringified by ``sanitize_list``: ``["-1.25", "False"]``), and
  ``filter`` (one line per doc *and filter* when a task has several).
* ``vlmevalkit``: VLMEvalKit's ``<model>_<dataset>.xlsx`` (default, written by pandas with the
  xlsxwriter engine) or ``.tsv`` / ``.csv`` (``PRED_FORMAT``; all fields quoted): the dataset's
  columns (``index``, ``question``, ``answer``, options...) minus ``image``, plus ``prediction``
  (open-compass/VLMEvalKit @e8e78f0, ``inference.py``, ``smp/file.py::dump``).
* ``coco_captions``: the COCO caption results file ``[{"image_id", "caption"}]``.
* ``evalai_vqa``: an EvalAI VQA submission ``[{"question_id", "answer"}]`` (VizWiz:
  ``[{"image", "answer"}]``).
* ``answers``: a plain ``{id: answer}`` JSON object (an answer is a string, or an object with
  ``text`` and / or media paths ``image`` (one or a list), ``audio``, ``video`` relative to
  ``media_root``) or a CSV / TSV with a header (``id`` and ``answer`` columns by default).
* ``media_dir``: a folder of generated files named by sample id: ``<id>.<ext>`` (one file) or
  ``<id>/<files>`` (several, in natural order: a story's images); the kind follows the suffix.
"""

from __future__ import annotations

import csv
import json
import re
import string
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Iterator, Mapping

from mio_eval.errors import ConfigError

__all__ = ["Answer", "FORMATS", "read_records", "render_id", "MEDIA_SUFFIXES"]

MEDIA_SUFFIXES = {".png": "image", ".jpg": "image", ".jpeg": "image", ".webp": "image", ".bmp": "image",
                  ".gif": "image", ".mp4": "video", ".avi": "video", ".webm": "video", ".mkv": "video",
                  ".mov": "video", ".wav": "audio", ".flac": "audio", ".mp3": "audio", ".ogg": "audio"}


@dataclass(frozen=True)
class Answer:
    """One prediction read from a file: generated text, or continuation log-likelihoods (with the
    continuation strings when the file names them), or media files, plus where it came from."""

    text: str | None = None
    loglikelihoods: tuple[tuple[float, bool], ...] = ()
    continuations: tuple[str, ...] = ()
    media: tuple[tuple[str, str], ...] = ()   # (kind, path as written)
    source: str = ""
    extra: Mapping[str, Any] = field(default_factory=dict)


# --- ids ----------------------------------------------------------------------------------------

class _IdFormatter(string.Formatter):
    """``str.format`` over a record with item access only (``{doc[subject]}``, ``{doc_id:04d}``)
    and one extra spec, ``:stem`` (a file name without folder and suffix: ``VizWiz_val_1.jpg`` ->
    ``VizWiz_val_1``). Attribute access is refused: an id template reads data, never objects."""

    def get_field(self, field_name, args, kwargs):
        if "." in field_name.split("[", 1)[0] or re.search(r"\]\.", field_name):
            raise ConfigError(f"id template field {{{field_name}}}: attribute access is not allowed")
        return super().get_field(field_name, args, kwargs)

    def format_field(self, value, format_spec):
        if format_spec == "stem":
            return Path(str(value)).stem
        if format_spec and isinstance(value, str) and value.lstrip("-").isdigit() and format_spec[-1:] in "dx":
            value = int(value)   # lm-eval stringifies nothing in doc, but CSV cells are strings
        return super().format_field(value, format_spec)


_FORMATTER = _IdFormatter()


def check_template(template: str) -> None:
    """Raise ConfigError unless ``template`` is a usable id template."""
    try:
        fields = [f for _, f, _, _ in _FORMATTER.parse(template) if f is not None]
    except ValueError as exc:
        raise ConfigError(f"bad id template {template!r}: {exc}") from None
    if not fields or any(f == "" or f.isdigit() for f in fields):
        raise ConfigError(f"id template {template!r} must name record fields, e.g. '{{doc_id}}' or '{{doc[question_id]}}'")
    for f in fields:
        if "." in f.split("[", 1)[0] or "]." in f:
            raise ConfigError(f"id template field {{{f}}}: attribute access is not allowed")


def render_id(template: str, record: Mapping[str, Any]) -> str:
    """The id ``template`` gives for ``record``; KeyError / IndexError / ValueError when the record
    lacks a field the template names (the caller reports which)."""
    return _FORMATTER.vformat(template, (), record)


# --- readers ------------------------------------------------------------------------------------

def _files(path: Path, patterns: tuple[str, ...], what: str) -> list[Path]:
    if path.is_file():
        return [path]
    if not path.is_dir():
        raise ConfigError(f"replay: {what} not found: {path}")
    found = sorted({p for pattern in patterns for p in path.rglob(pattern) if p.is_file()})
    if not found:
        raise ConfigError(f"replay: no {what} under {path} (looked for {', '.join(patterns)})")
    return found


def _jsonl(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    with open(path, encoding="utf-8") as fh:
        for n, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as exc:
                raise ConfigError(f"replay: {path}:{n}: not a JSON line ({exc.msg})") from None
            if not isinstance(record, dict):
                raise ConfigError(f"replay: {path}:{n}: a line must be a JSON object")
            yield n, record


def _json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ConfigError(f"replay: unreadable JSON {path}: {' '.join(str(exc).split())}") from None


def _as_bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip()
    if text in ("True", "true", "1"):
        return True
    if text in ("False", "false", "0"):
        return False
    raise ValueError(f"not a boolean: {value!r}")


def _loglikelihood_pairs(value: Any) -> tuple[tuple[float, bool], ...] | None:
    """``[[ll, is_greedy], ...]`` (numbers or ``sanitize_list`` strings) as floats and bools, or
    None when ``value`` is not such a list."""
    if not isinstance(value, list) or not value:
        return None
    pairs = []
    for item in value:
        if isinstance(item, list) and len(item) == 1 and isinstance(item[0], list):
            item = item[0]   # resps keep one more level: [[[ll, greedy]], ...]
        if not (isinstance(item, list) and len(item) == 2):
            return None
        try:
            pairs.append((float(item[0]), _as_bool(item[1])))
        except (TypeError, ValueError):
            return None
    return tuple(pairs)


def _harness_answer(record: Mapping[str, Any], *, field_name: str, where: str) -> Answer:
    """An lm-eval / lmms-eval sample line as an Answer: log-likelihood pairs or one text."""
    if field_name not in record:
        # lmms-eval drops ``resps`` when it equals ``filtered_resps``.
        fallback = "filtered_resps" if field_name == "resps" else None
        if fallback and fallback in record:
            field_name = fallback
        else:
            raise ConfigError(f"replay: {where}: no {field_name!r} field (has {', '.join(sorted(record))})")
    value = record[field_name]
    pairs = _loglikelihood_pairs(value)
    if pairs is not None:
        continuations = ()
        arguments = record.get("arguments")
        if isinstance(arguments, dict):   # lm-eval: {"gen_args_i": {"arg_0": context, "arg_1": continuation}}
            args = [arguments[k] for k in sorted(arguments, key=lambda k: int(k.rsplit("_", 1)[-1]))]
            if all(isinstance(a, dict) and "arg_1" in a for a in args) and len(args) == len(pairs):
                continuations = tuple(str(a["arg_1"]) for a in args)
        elif isinstance(arguments, list) and len(arguments) == len(pairs) and all(
                isinstance(a, list) and len(a) >= 2 for a in arguments):   # lmms-eval <= 0.3
            continuations = tuple(str(a[1]) for a in arguments)
        return Answer(loglikelihoods=pairs, continuations=continuations, source=where)
    while isinstance(value, list) and len(value) == 1:   # ["text"], [["text"]]: one request, one response
        value = value[0]
    if isinstance(value, list):
        raise ConfigError(f"replay: {where}: {field_name} holds {len(value)} responses; replay reads one "
                          f"generation or a list of log-likelihoods")
    return Answer(text="" if value is None else str(value), source=where,
                  extra={"prompt": record.get("input")} if record.get("input") is not None else {})


def _read_harness(path: Path, *, field_name: str | None, filter_name: str | None, patterns: tuple[str, ...],
                  tool: str) -> Iterator[tuple[Mapping[str, Any], Answer]]:
    field_name = field_name or "filtered_resps"
    for file in _files(path, patterns, f"{tool} samples file"):
        lines = list(_jsonl(file))
        filters = sorted({str(r["filter"]) for _, r in lines if "filter" in r})
        if len(filters) > 1 and filter_name is None:
            raise ConfigError(f"replay: {file} holds several filters ({', '.join(filters)}): choose one with "
                              f"model.filter=NAME")
        for n, record in lines:
            if filter_name is not None and "filter" in record and str(record["filter"]) != filter_name:
                continue
            yield record, _harness_answer(record, field_name=field_name, where=f"{file.name}:{n}")


def _read_table(path: Path) -> list[dict[str, Any]]:
    """Rows of a VLMEvalKit / plain prediction table (.xlsx through pandas+openpyxl; .tsv, .csv)."""
    suffix = path.suffix.lower()
    if suffix == ".xlsx":
        try:
            import pandas as pd
            frame = pd.read_excel(path, dtype=object)
        except ImportError as exc:
            raise ConfigError(f"replay: reading {path.name} needs openpyxl ({exc}); pip install openpyxl") from None
        except Exception as exc:  # noqa: BLE001 - openpyxl/zipfile raise many types for a bad file
            raise ConfigError(f"replay: unreadable spreadsheet {path}: {' '.join(str(exc).split())}") from None
        frame = frame.astype(object).where(frame.notna(), None)
        return [{str(k): v for k, v in row.items()} for row in frame.to_dict("records")]
    if suffix in (".tsv", ".csv"):
        with open(path, encoding="utf-8", newline="") as fh:
            return list(csv.DictReader(fh, delimiter="\t" if suffix == ".tsv" else ","))
    raise ConfigError(f"replay: {path.name}: expected .xlsx, .tsv or .csv")


def _cell_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _read_vlmevalkit(path: Path, *, field_name: str | None, **_: Any) -> Iterator[tuple[Mapping[str, Any], Answer]]:
    field_name = field_name or "prediction"
    for file in _files(path, ("*.xlsx", "*.tsv"), "VLMEvalKit prediction file"):
        rows = _read_table(file)
        if rows and field_name not in rows[0]:
            raise ConfigError(f"replay: {file}: no {field_name!r} column (has {', '.join(rows[0])})")
        for n, row in enumerate(rows, 2):   # spreadsheet row numbers: the header is row 1
            yield row, Answer(text=_cell_text(row[field_name]), source=f"{file.name}:{n}")


def _read_json_list(path: Path, *, field_name: str, keys: tuple[str, ...], what: str) -> Iterator[tuple[Mapping[str, Any], Answer]]:
    data = _json(path)
    if not isinstance(data, list):
        raise ConfigError(f"replay: {path}: a {what} is a JSON list of objects")
    for n, item in enumerate(data):
        if not isinstance(item, dict) or field_name not in item:
            raise ConfigError(f"replay: {path}: item {n} is not an object with {field_name!r}")
        if not any(k in item for k in keys):
            raise ConfigError(f"replay: {path}: item {n} has none of {', '.join(keys)}")
        yield item, Answer(text=str(item[field_name]), source=f"{path.name}[{n}]")


def _read_coco(path: Path, *, field_name: str | None, **_: Any):
    return _read_json_list(path, field_name=field_name or "caption", keys=("image_id",), what="COCO results file")


def _read_evalai(path: Path, *, field_name: str | None, **_: Any):
    return _read_json_list(path, field_name=field_name or "answer", keys=("question_id", "image"),
                           what="EvalAI VQA submission")


def _answer_from_value(value: Any, where: str) -> Answer:
    if isinstance(value, (str, int, float)) and not isinstance(value, bool):
        return Answer(text=str(value), source=where)
    if isinstance(value, dict):
        media: list[tuple[str, str]] = []
        for kind in ("image", "audio", "video"):
            paths = value.get(kind) or []
            for p in [paths] if isinstance(paths, str) else paths:
                media.append((kind, str(p)))
        text = value.get("text")
        return Answer(text=None if text is None else str(text), media=tuple(media), source=where)
    raise ConfigError(f"replay: {where}: an answer is a string or an object with text / image / audio / video")


def _read_answers(path: Path, *, field_name: str | None, **_: Any) -> Iterator[tuple[Mapping[str, Any], Answer]]:
    if path.suffix.lower() == ".json":
        data = _json(path)
        if not isinstance(data, dict):
            raise ConfigError(f"replay: {path}: an answers file is a JSON object of id -> answer")
        for key, value in data.items():
            yield {"id": key}, _answer_from_value(value, f"{path.name}[{key!r}]")
        return
    field_name = field_name or "answer"
    rows = _read_table(path)
    if rows and field_name not in rows[0]:
        raise ConfigError(f"replay: {path}: no {field_name!r} column (has {', '.join(rows[0])})")
    for n, row in enumerate(rows, 2):
        yield row, Answer(text=_cell_text(row[field_name]), source=f"{path.name}:{n}")


def _natural(name: str) -> list[Any]:
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", name)]


def _read_media_dir(path: Path, **_: Any) -> Iterator[tuple[Mapping[str, Any], Answer]]:
    if not path.is_dir():
        raise ConfigError(f"replay: media folder not found: {path}")
    for entry in sorted(path.iterdir()):
        if entry.is_dir():
            files = sorted((f for f in entry.iterdir() if f.suffix.lower() in MEDIA_SUFFIXES), key=lambda f: _natural(f.name))
            if files:
                yield {"id": entry.name}, Answer(media=tuple((MEDIA_SUFFIXES[f.suffix.lower()], f"{entry.name}/{f.name}")
                                                             for f in files), source=f"{entry.name}/")
        elif entry.suffix.lower() in MEDIA_SUFFIXES:
            yield {"id": entry.stem}, Answer(media=((MEDIA_SUFFIXES[entry.suffix.lower()], entry.name),), source=entry.name)


# format -> (reader, default id template, default media root is the file's folder)
FORMATS: dict[str, tuple[Any, str]] = {
    "lmms_eval": (lambda p, **kw: _read_harness(p, patterns=("*_samples_*.jsonl", "*.jsonl"), tool="lmms-eval", **kw),
                  "{doc_id}"),
    "lm_eval": (lambda p, **kw: _read_harness(p, patterns=("samples_*.jsonl",), tool="lm-eval", **kw), "{doc_id}"),
    "vlmevalkit": (_read_vlmevalkit, "{index}"),
    "coco_captions": (_read_coco, "{image_id}"),
    "evalai_vqa": (_read_evalai, "{question_id}"),
    "answers": (_read_answers, "{id}"),
    "media_dir": (_read_media_dir, "{id}"),
}


def read_records(fmt: str, path: Path, *, field_name: str | None = None,
                 filter_name: str | None = None) -> Iterable[tuple[Mapping[str, Any], Answer]]:
    """``(record, Answer)`` pairs of a prediction file in format ``fmt`` (one of FORMATS)."""
    try:
        reader, _ = FORMATS[fmt]
    except KeyError:
        raise ConfigError(f"replay: unknown format {fmt!r}; one of: {', '.join(FORMATS)}") from None
    kwargs: dict[str, Any] = {"field_name": field_name}
    if fmt in ("lmms_eval", "lm_eval"):
        kwargs["filter_name"] = filter_name
    return reader(path, **kwargs)
