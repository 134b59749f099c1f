"""Write the static site: ``index.html``, one ``run_<id>.html`` per run, ``compare_<task>.html`` per
task that two or more models ran, ``assets/`` (script, style), ``data/`` and ``plots/``.

Opening from ``file://`` forbids ``fetch`` of local JSON, so data are JavaScript files that call
``MIO_VIEW.put(key, value)``, loaded on demand through ``<script>`` elements:

* ``data/<run>/index_<k>.js`` — :data:`INDEX_CHUNK` entries ``[id, value, has_error]`` in dataset
  order: what the value / error filters and sorting need, loaded when a run page opens (a
  200k-sample run is 20 of these files, ~5 MB: see ``benchmarks/view_scale.py``);
* ``data/<run>/text_<k>.js`` — the lower-cased search text of the same samples, loaded on the
  first text search only;
* ``data/<run>/samples_<k>.js`` — :data:`SAMPLE_CHUNK` display records
  (:func:`mio_eval.view.records.display_record`), loaded only for the page being shown.

Media are linked by a path relative to the site (``os.path.relpath``) or, with
``copy_media=True``, copied under ``media/`` so the site can be moved; never by an absolute path.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
from importlib import resources
from pathlib import Path
from string import Template
from typing import Any, Mapping, Sequence

from mio_eval.results import RunResult, find_runs

__all__ = ["build_site", "INDEX_CHUNK", "SAMPLE_CHUNK", "run_id"]

INDEX_CHUNK = 10_000
SAMPLE_CHUNK = 100


def run_id(run: RunResult) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", f"{run.model}__{run.task}")


def _template(name: str) -> str:
    return resources.files("mio_eval.view").joinpath("templates", name).read_text(encoding="utf-8")


def _js_put(key: str, value: Any) -> str:
    # "</" cannot end a script here (files are loaded by src), but keep U+2028/9 escaped for old parsers.
    body = json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    body = body.replace("\u2028", "\\u2028").replace("\u2029", "\\u2029")
    return f"MIO_VIEW.put({json.dumps(key)},{body});\n"


def _json_for_html(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, allow_nan=False).replace("</", "<\\/")


class _Linker:
    """Media hrefs relative to the site root; copies under ``media/`` when asked."""

    def __init__(self, out: Path, *, copy_media: bool) -> None:
        self.out = out.resolve()
        self.copy_media = copy_media
        self.copied: dict[Path, str] = {}

    def __call__(self, path: Path) -> str | None:
        path = Path(os.path.abspath(path))
        if not path.is_file():
            return None
        if not self.copy_media:
            return Path(os.path.relpath(path, self.out)).as_posix()
        if path not in self.copied:
            digest = hashlib.sha256(str(path).encode()).hexdigest()[:12]
            target = self.out / "media" / digest / path.name
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, target)
            self.copied[path] = target.relative_to(self.out).as_posix()
        return self.copied[path]


def _metric_text(entry: Mapping[str, Any]) -> str:
    value = entry.get("value")
    if value is None:
        return "–"
    text = f"{value * float(entry.get('scale', 1.0)):.2f}"
    half = (entry.get("extra") or {}).get("ci95_half_width")
    return text + (f" ± {half * float(entry.get('scale', 1.0)):.2f}" if half is not None else "")


def _run_summary(run: RunResult) -> dict[str, Any]:
    headline = run.headline()
    metrics = run.metrics
    primary = headline[0] if headline else None
    return {
        "id": run_id(run), "model": run.model, "task": run.task, "n": run.n, "errors": run.n_errors,
        "status": run.status, "limit": run.limit, "judge": run.judge or "–",
        "split_size": run.data.get("split_size"), "times": run.data.get("times") or {},
        "variant": ", ".join(f"{k}: {v}" for k, v in run.variants.items() if "/" not in k),
        "primary": primary,
        "value": (metrics[primary]["value"] * float(metrics[primary].get("scale", 1.0))
                  if primary and metrics[primary].get("value") is not None else None),
        "higher_is_better": bool(metrics[primary].get("higher_is_better", True)) if primary else True,
        # Per-sample values built by the metric's own recipe (extra.per_sample) are raw like the
        # metric's value and take its scale; a task's own per-sample field is shown as written.
        "scale": (float(metrics[primary].get("scale", 1.0))
                  if primary and (metrics[primary].get("extra") or {}).get("per_sample") else 1.0),
        "metrics": [[name, _metric_text(metrics[name]), bool(metrics[name].get("higher_is_better", True))]
                    for name in headline],
    }


def _write_run_data(run: RunResult, data_dir: Path, link: _Linker) -> dict[str, Any]:
    """Chunk files of one run; returns the counts the page needs."""
    from mio_eval.view.records import display_record, search_text

    summary = _run_summary(run)
    metric = summary["primary"]
    entry = run.metrics.get(metric) if metric else None
    predictions = {str(row["id"]): row for row in run.predictions() if "id" in row}
    data_dir.mkdir(parents=True, exist_ok=True)
    rid = summary["id"]
    index: list[list[Any]] = []
    texts: list[str] = []
    samples: list[dict[str, Any]] = []
    counts = {"index": 0, "samples": 0, "n": 0}

    def flush_samples(final: bool = False) -> None:
        while len(samples) >= SAMPLE_CHUNK or (final and samples):
            chunk, samples[:] = samples[:SAMPLE_CHUNK], samples[SAMPLE_CHUNK:]
            key = f"{rid}/samples_{counts['samples']}"
            (data_dir / f"samples_{counts['samples']}.js").write_text(_js_put(key, chunk), encoding="utf-8")
            counts["samples"] += 1

    def flush_index(final: bool = False) -> None:
        while len(index) >= INDEX_CHUNK or (final and index):
            chunk, index[:] = index[:INDEX_CHUNK], index[INDEX_CHUNK:]
            text, texts[:] = texts[:INDEX_CHUNK], texts[INDEX_CHUNK:]
            k = counts["index"]
            (data_dir / f"index_{k}.js").write_text(_js_put(f"{rid}/index_{k}", chunk), encoding="utf-8")
            (data_dir / f"text_{k}.js").write_text(_js_put(f"{rid}/text_{k}", text), encoding="utf-8")
            counts["index"] += 1

    def add(sample_id: str, score: Mapping[str, Any] | None) -> None:
        record = display_record(sample_id=sample_id, prediction=predictions.pop(sample_id, None), score=score,
                                metric=metric, metric_entry=entry, run_dir=run.run_dir, link=link)
        value = record["value"]
        index.append([sample_id, value, 1 if record["error"] else 0])
        texts.append(search_text(record))
        samples.append(record)
        counts["n"] += 1
        flush_samples()
        flush_index()

    for score in run.scores():  # streamed: a 200k-sample run is never held as display records
        if "id" in score:
            add(str(score["id"]), score)
    for sample_id in list(predictions):  # generated, not (yet) scored
        add(sample_id, None)
    flush_samples(final=True)
    flush_index(final=True)
    return {**summary, "n_samples": counts["n"], "index_chunks": counts["index"], "sample_chunks": counts["samples"],
            "index_chunk": INDEX_CHUNK, "sample_chunk": SAMPLE_CHUNK}


def _page(template: str, *, title: str, payload: Mapping[str, Any]) -> str:
    import html

    return Template(_template(template)).substitute(title=html.escape(title), payload=_json_for_html(payload))


def build_site(root: str | Path, out: str | Path, *, copy_media: bool = False, plots: bool = True,
               runs: Sequence[RunResult] | None = None) -> Path:
    """Write the site for every run under ``root`` into ``out``; returns ``out/index.html``."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    runs = list(runs) if runs is not None else find_runs(root)
    assets = out / "assets"
    assets.mkdir(exist_ok=True)
    for name in ("app.js", "style.css"):
        (assets / name).write_text(_template(name), encoding="utf-8")
    link = _Linker(out, copy_media=copy_media)
    pages = []
    for run in runs:
        info = _write_run_data(run, out / "data" / run_id(run), link)
        pages.append(info)
        (out / f"run_{info['id']}.html").write_text(
            _page("page.html", title=f"{run.model} · {run.task}", payload={"page": "run", "run": info}), encoding="utf-8")
    by_task: dict[str, list[dict[str, Any]]] = {}
    for info in pages:
        by_task.setdefault(info["task"], []).append(info)
    compares = {}
    for task, infos in sorted(by_task.items()):
        if len(infos) < 2:
            continue
        compares[task] = f"compare_{re.sub(r'[^A-Za-z0-9_.-]+', '_', task)}.html"
        (out / compares[task]).write_text(
            _page("page.html", title=f"compare · {task}", payload={"page": "compare", "task": task, "runs": infos}),
            encoding="utf-8")
    plot_files: list[str] = []
    if plots and runs:
        from mio_eval.plots import write_plots

        plot_files = [p.relative_to(out).as_posix() for p in write_plots(runs, out / "plots")]
    summaries = [{k: v for k, v in info.items() if k not in ("index_chunk", "sample_chunk")} for info in pages]
    (out / "index.html").write_text(
        _page("page.html", title="mio-eval results",
              payload={"page": "index", "runs": summaries, "compare": compares, "plots": plot_files}),
        encoding="utf-8")
    return out / "index.html"
