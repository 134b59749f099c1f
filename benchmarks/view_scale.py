"""Cost of ``mio-eval view`` at VQAv2 scale: a synthetic run of N samples (VQAv2 val has 214,354
questions) written in the runner's exact files (predictions.jsonl, scores.jsonl, metrics.json),
then the site built from it: build time, what a run page loads up front (the index chunks) and
what one page of samples loads (one sample chunk).

    python benchmarks/view_scale.py [--n 200000] [--out /tmp/view_scale]

With ``--browser``, headless Chromium (as tests/test_view.py drives it) opens the run page and
the time until the first page of samples is shown is reported.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import time
from pathlib import Path


def write_run(root: Path, n: int) -> Path:
    run_dir = root / "model" / "vqav2_val"
    run_dir.mkdir(parents=True)
    rng = random.Random(0)
    words = "yes no 2 3 red blue man woman dog cat table kitchen street tennis pizza".split()
    total = 0.0
    with (run_dir / "predictions.jsonl").open("w") as preds, (run_dir / "scores.jsonl").open("w") as scores:
        for i in range(n):
            answer = rng.choice(words)
            answers = [rng.choice(words) for _ in range(10)]
            acc = min(1.0, answers.count(answer) / 3)
            total += acc
            question = f"What is in image {i} near the {rng.choice(words)}?"
            preds.write(json.dumps({"id": str(i), "prompt": [{"type": "image", "path": f"/data/coco/val2014/{i}.jpg"},
                                                             {"type": "text", "text": question}],
                                    "output": {"text": answer, "media": []}, "prediction": answer, "error": None,
                                    "time_s": 0.01}) + "\n")
            scores.write(json.dumps({"id": str(i), "error": None, "answer_type": rng.choice(["yes/no", "number", "other"]),
                                     "prediction": answer, "normalized": answer, "accuracy": acc, "answers": answers}) + "\n")
    metrics = {"task": "vqav2_val", "model": "model", "n": n, "n_errors": 0,
               "metrics": {"vqa_accuracy": {"value": total / n, "higher_is_better": True, "variant": "lmms",
                                            "provenance": "synthetic", "scale": 100.0, "n": n, "extra": {}}},
               "judges": [], "complete": True}
    (run_dir / "metrics.json").write_text(json.dumps(metrics))
    return run_dir


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=200_000)
    parser.add_argument("--out", default="/tmp/view_scale")
    parser.add_argument("--browser", action="store_true")
    args = parser.parse_args()
    from mio_eval.view.site import build_site

    base = Path(args.out)
    shutil.rmtree(base, ignore_errors=True)
    write_run(base / "results", args.n)
    start = time.perf_counter()
    build_site(base / "results", base / "site", plots=False)
    build_s = time.perf_counter() - start
    data = base / "site" / "data" / "model__vqav2_val"
    index = sorted(data.glob("index_*.js"))
    texts = sorted(data.glob("text_*.js"))
    samples = sorted(data.glob("samples_*.js"))
    mb = lambda files: sum(f.stat().st_size for f in files) / 1e6  # noqa: E731
    print(f"n={args.n}: build {build_s:.1f} s ({args.n / build_s:,.0f} samples/s)")
    print(f"index: {len(index)} files, {mb(index):.1f} MB loaded when a run page opens")
    print(f"search text: {len(texts)} files, {mb(texts):.1f} MB loaded on the first text search")
    print(f"samples: {len(samples)} files, {mb(samples):.1f} MB in all, one page loads {mb(samples[:1]) * 1000:.0f} kB")
    if args.browser:
        os.environ.setdefault("SE_AVOID_STATS", "true")  # selenium-manager: no usage ping
        from selenium import webdriver
        from selenium.webdriver.chrome.options import Options
        from selenium.webdriver.chrome.service import Service

        options = Options()
        for arg in ("--headless=new", "--no-sandbox", "--disable-gpu"):
            options.add_argument(arg)
        options.binary_location = shutil.which("chromium")
        driver = webdriver.Chrome(service=Service(shutil.which("chromedriver")), options=options)
        start = time.perf_counter()
        driver.get((base / "site" / "run_model__vqav2_val.html").as_uri())
        while not driver.execute_script("return document.body.getAttribute('data-ready')"):
            time.sleep(0.05)
        print(f"browser: first page shown {time.perf_counter() - start:.2f} s after opening")

        def control(element: str, value: str, event: str, ready: str, what: str) -> None:
            """Set a page control, fire its event, wait for the page's ``data-ready`` step."""
            start = time.perf_counter()
            driver.execute_script(f"const e = document.getElementById('{element}'); e.value = '{value}';"
                                  f"e.dispatchEvent(new Event('{event}'));")
            while driver.execute_script("return document.body.getAttribute('data-ready')") != ready:
                time.sleep(0.05)
            print(f"browser: {what} in {time.perf_counter() - start:.2f} s")

        control("sort", "worst", "change", "2", "sorted worst first over all samples")
        control("search", "tennis", "input", "3", "first text search (loads the search text)")
        driver.quit()


if __name__ == "__main__":
    main()
