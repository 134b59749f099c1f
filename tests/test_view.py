"""``mio-eval view`` in a real browser: a small results root (the embedded ``tts_demo`` run by two
models, and text-to-image on a COCO Karpathy fixture with the answer-key oracle and a tiny random
CLIP) rendered to a static site and opened from ``file://`` in headless Chromium (Debian's
``chromium`` + ``chromium-driver``, driven by selenium). Screenshots go to
``results/_artifacts/view/`` (git-ignored, kept by CI)."""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path
from urllib.parse import unquote, urlparse

import numpy as np
import pytest
import soundfile as sf
from PIL import Image as PILImage

from mio_eval import run
from mio_eval.models.oracle import answer_key
from mio_eval.tasks.loaders.karpathy import KarpathyLoader
from mio_eval.tasks.t2i import CaptionToImageSamples
from mio_eval.view import main as view_main
from mio_eval.view.records import alignment
from mio_eval.view.site import build_site
from test_clip_metrics import tiny_hf_clip  # noqa: F401 - shared fixture

ARTIFACTS = Path(__file__).resolve().parents[1] / "results" / "_artifacts" / "view"


def _browser_paths() -> tuple[str, str] | None:
    binary = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
    driver = shutil.which("chromedriver")
    return (binary, driver) if binary and driver else None


def _coco(root: Path) -> Path:
    (root / "coco" / "val2014").mkdir(parents=True)
    images = []
    for i, colour in enumerate([(220, 40, 40), (40, 180, 60), (50, 70, 220)]):
        arr = np.zeros((40, 48 + 8 * i, 3), np.uint8)
        arr[:] = colour
        arr[:: 3 + i, :, :] = 255 - np.array(colour, np.uint8)
        name = f"COCO_val2014_{i + 1:012d}.jpg"
        PILImage.fromarray(arr).save(root / "coco" / "val2014" / name, quality=95)
        images.append({"filepath": "val2014", "filename": name, "imgid": i, "split": "test", "cocoid": i + 1,
                       "sentences": [{"raw": f"A picture number {i} caption {k}."} for k in range(5)]})
    (root / "coco" / "dataset_coco.json").write_text(json.dumps({"dataset": "coco", "images": images}))
    return root


def _vctk(root: Path) -> Path:
    """VCTK 0.92's layout: txt/<spk>/<utt>.txt beside wav48_silence_trimmed/<spk>/<utt>_mic1.flac."""
    vctk = root / "VCTK-Corpus-0.92"
    for utt, text in (("p225_001", "Please call Stella."), ("p226_001", "Six spoons of fresh snow peas.")):
        spk = utt.split("_")[0]
        (vctk / "txt" / spk).mkdir(parents=True)
        (vctk / "txt" / spk / f"{utt}.txt").write_text(text + "\n", encoding="utf-8")
        (vctk / "wav48_silence_trimmed" / spk).mkdir(parents=True)
        t = np.arange(int(0.6 * 48000)) / 48000
        sf.write(vctk / "wav48_silence_trimmed" / spk / f"{utt}_mic1.flac", 0.2 * np.sin(2 * np.pi * 220 * t), 48000)
    return root


@pytest.fixture(scope="module")
def results_root(tmp_path_factory, tiny_hf_clip):  # noqa: F811
    base = tmp_path_factory.mktemp("view")
    root = base / "results"
    # Two utterances each: the PocketSphinx judge takes about a second of CPU per utterance.
    common = [f"paths.results_dir={root}", "runner.progress=false", "runner.limit=2"]
    run("tts_demo", "dummy", common)
    run("tts_demo", "espeak", common)
    data = _coco(base / "data")
    # VCTK has the speakers' recordings: the page plays them beside the generated speech.
    run("tts_vctk", "dummy", [f"paths.results_dir={root}", "runner.progress=false", f"paths.data_dir={_vctk(data)}",
                              "task.judge.whisper_path=null"])
    samples = CaptionToImageSamples(source=KarpathyLoader(annotations=str(data / "coco" / "dataset_coco.json"),
                                                          image_root=str(data / "coco"), split="test", dataset="coco"))()
    key = answer_key(samples, base / "key.json")
    run("t2i_coco_karpathy", "oracle", [f"paths.results_dir={root}", f"paths.data_dir={data}", "runner.progress=false",
                                        f"paths.cache_dir={base / 'cache'}", f"model.answers_path={key}",
                                        f"task.clip.path={tiny_hf_clip}"])
    return root


@pytest.fixture(scope="module")
def site(results_root):
    out = results_root.parent / "site"
    # Tiny chunks, so that a page spans several index and sample files as at COCO scale.
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr("mio_eval.view.site.SAMPLE_CHUNK", 1)
        mp.setattr("mio_eval.view.site.INDEX_CHUNK", 1)
        build_site(results_root, out)
    return out


@pytest.fixture(scope="module")
def browser():
    paths = _browser_paths()
    if paths is None:
        pytest.skip("no headless browser: Debian's chromium and chromium-driver are not installed "
                    "(scripts/setup.sh installs them; apt-get was unavailable here)")
    webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed (pip install -e .[dev])")
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    os.environ.setdefault("SE_OFFLINE", "true")  # selenium-manager: no download, no usage ping
    os.environ.setdefault("SE_AVOID_STATS", "true")
    options = Options()
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1280,900",
                "--no-first-run", "--disable-extensions"):
        options.add_argument(arg)
    options.binary_location = paths[0]
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(paths[1]), options=options)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    yield driver
    driver.quit()


def _open(driver, page: Path, query: str = ""):
    driver.get(page.as_uri() + query)
    _wait(driver, lambda: driver.execute_script("return document.body.getAttribute('data-ready')"))
    return driver


def _wait(driver, condition, timeout: float = 10.0):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        value = condition()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError("timed out waiting for the page")


def _severe(driver) -> list[str]:
    return [entry["message"] for entry in driver.get_log("browser") if entry["level"] == "SEVERE"]


def _visible_ids(driver) -> list[str]:
    return driver.execute_script("return Array.from(document.querySelectorAll('#samples > article.sample'))"
                                 ".map(a => a.dataset.id)")


def _set(driver, element_id: str, value: str) -> None:
    driver.execute_script(
        "const e = document.getElementById(arguments[0]); e.value = arguments[1];"
        "e.dispatchEvent(new Event(e.tagName === 'SELECT' ? 'change' : 'input'));", element_id, value)
    time.sleep(0.1)
    _wait(driver, lambda: driver.execute_script("return document.getElementById('status').textContent.includes('match')"))


def test_alignment_marks_substitutions_deletions_insertions():
    assert alignment("the birch canoe slid", "a birch canoe slid on") == [
        ["s", "the", "a"], ["e", "birch canoe slid", "birch canoe slid"], ["i", "", "on"]]
    assert alignment("one two three", "one three") == [["e", "one", "one"], ["d", "two", ""], ["e", "three", "three"]]
    assert alignment("", "x") is None


def test_display_record_media_texts_and_scores(tmp_path):
    from mio_eval.view.records import display_record, search_text

    run_dir = tmp_path / "run"
    (run_dir / "media").mkdir(parents=True)
    (run_dir / "media" / "v.mp4").write_bytes(b"\0")
    frame = tmp_path / "data" / "frame.jpg"
    frame.parent.mkdir()
    PILImage.new("RGB", (4, 4)).save(frame)
    prediction = {"prompt": [{"type": "video", "path": str(frame.with_name("clip.avi"))},
                             {"type": "image", "path": str(frame)}, {"type": "text", "text": "What is it?"}],
                  "output": {"text": "a dog", "media": [{"type": "video", "path": "media/v.mp4"}]},
                  "prediction": "a dog", "error": None}
    score = {"id": "q1", "error": None, "answers": ["dog", "dog", "puppy"], "accuracy": 1.0, "correct": True,
             "normalized": "dog" * 1000}
    links = []
    record = display_record(sample_id="q1", prediction=prediction, score=score, metric="vqa_accuracy",
                            metric_entry={"extra": {}}, run_dir=run_dir,
                            link=lambda p: (links.append(p) or f"rel/{p.name}") if p.is_file() else None)
    assert record["media"] == [["input image", "image", "rel/frame.jpg"], ["generated video", "video", "rel/v.mp4"]]
    assert links[1] == run_dir / "media" / "v.mp4"  # relative paths resolve against the run dir
    # A missing input is said, not dropped; texts keep their order; long texts are cut and marked.
    assert [label for label, _ in record["texts"]] == ["input video", "prompt", "output", "answers", "normalized"]
    texts = dict(record["texts"])
    assert texts["input video"] == "(missing file: clip.avi)"
    assert texts["answers"] == "dog | dog | puppy" and texts["output"] == "a dog"
    assert texts["normalized"].endswith("[1000 more characters]") and len(texts["normalized"]) < 2100
    assert record["scores"] == {"accuracy": 1.0, "correct": 1.0} and record["value"] == 1.0
    assert search_text(record).startswith("q1 ") and "puppy" in search_text(record)


def test_site_has_no_absolute_paths_and_copy_media_moves(results_root, site, tmp_path):
    text = "\n".join(p.read_text(encoding="utf-8") for p in site.rglob("*") if p.suffix in (".html", ".js"))
    assert str(results_root.parent) not in text and "/tmp/" not in text and str(Path.home()) + "/" not in text
    assert "file:///" not in text
    out = tmp_path / "copied"
    assert view_main([str(results_root), "--out", str(out), "--copy-media", "--no-plots"]) == 0
    moved = tmp_path / "moved"
    shutil.move(str(out), moved)  # a copied site still finds every file after a move
    records = []
    for chunk in moved.glob("data/*/samples_*.js"):
        body = chunk.read_text(encoding="utf-8")
        records += json.loads(body[body.index(",") + 1: body.rindex(")")])
    hrefs = [m[2] for r in records for m in r["media"]]
    assert len(hrefs) == 2 + 2 + 2 * 2 + 3 * 2 and all(h.startswith("media/") and (moved / h).is_file() for h in hrefs)
    assert view_main([str(tmp_path / "none"), "--out", str(tmp_path / "x")]) == 2
    (tmp_path / "empty").mkdir()
    assert view_main([str(tmp_path / "empty"), "--out", str(tmp_path / "x")]) == 2 and not (tmp_path / "x").exists()


def test_index_loads_sorts_and_shows_plots(site, browser):
    driver = _open(browser, site / "index.html")
    rows = driver.execute_script("return Array.from(document.querySelectorAll('#runs tbody tr')).map(r => r.dataset.run)")
    assert sorted(rows) == ["dummy__tts_demo", "dummy__tts_vctk", "espeak__tts_demo", "oracle__t2i_coco_karpathy"]
    badges = driver.execute_script("return Array.from(document.querySelectorAll('#runs .badge')).map(b => b.textContent)")
    # runner.limit on the tts_demo runs; 3 of Karpathy's 5000 test images; VCTK has no fixed size
    assert sorted(badges) == ["complete", "incomplete", "limited", "limited"]
    driver.execute_script("document.querySelectorAll('#runs th')[1].click()")  # task, ascending
    first = driver.execute_script("return document.querySelector('#runs tbody tr').dataset.run")
    assert first == "oracle__t2i_coco_karpathy"
    driver.execute_script("document.querySelectorAll('#runs th')[1].click()")  # descending
    assert driver.execute_script("return document.querySelector('#runs tbody tr').dataset.run") != first
    _wait(driver, lambda: driver.execute_script("return Array.from(document.images).every(i => i.complete)"))
    widths = driver.execute_script("return Array.from(document.querySelectorAll('.plots img')).map(i => i.naturalWidth)")
    assert len(widths) >= 3 and all(w > 0 for w in widths)
    assert _severe(driver) == []
    driver.save_screenshot(str(ARTIFACTS / "index.png"))


def test_tts_run_page_audio_decodes_and_filters_change_rows(site, browser):
    driver = _open(browser, site / "run_dummy__tts_demo.html", "?size=1")
    assert _visible_ids(driver) == ["harvard01_001"]  # page 1 of 2
    driver.execute_script("document.getElementById('next').click()")
    _wait(driver, lambda: _visible_ids(driver) == ["harvard01_002"])
    driver.get((site / "run_dummy__tts_demo.html").as_uri())
    _wait(driver, lambda: len(_visible_ids(driver)) == 2)
    _wait(driver, lambda: driver.execute_script(
        "return Array.from(document.querySelectorAll('audio')).every(a => a.readyState >= 1 || a.error)"))
    audio = driver.execute_script("return Array.from(document.querySelectorAll('audio'))"
                                  ".map(a => [a.currentSrc, a.duration, a.error && a.error.code])")
    assert len(audio) == 2
    for src, duration, error in audio:
        path = Path(unquote(urlparse(src).path))
        assert path.is_file() and error is None and duration > 0
        assert sf.info(str(path)).duration == pytest.approx(duration, abs=0.05)
    spans = driver.execute_script("return document.querySelectorAll('.align span.s, .align span.d, .align span.i').length")
    assert spans > 0
    _set(driver, "search", "birch canoe")
    assert _visible_ids(driver) == ["harvard01_001"]
    _set(driver, "search", "")
    _set(driver, "error", "only")
    assert _visible_ids(driver) == []
    _set(driver, "error", "all")
    values = driver.execute_script("return Array.from(document.querySelectorAll('#samples .value'))"
                                   ".map(v => parseFloat(v.textContent.split(' ').pop()))")
    _set(driver, "min", str(max(values)))
    assert 1 <= len(_visible_ids(driver)) < 2 or len(set(values)) == 1
    _set(driver, "min", "")
    _set(driver, "sort", "best")  # WER: lowest first
    best = driver.execute_script("return Array.from(document.querySelectorAll('#samples .value'))"
                                 ".map(v => parseFloat(v.textContent.split(' ').pop()))")
    assert best == sorted(values)
    assert _severe(driver) == []
    driver.save_screenshot(str(ARTIFACTS / "run_tts_demo.png"))
    # The README's screenshot: espeak's run of the demo, worst utterances first.
    _open(driver, site / "run_espeak__tts_demo.html")
    _set(driver, "sort", "worst")
    _wait(driver, lambda: driver.execute_script("return Array.from(document.querySelectorAll('audio'))"
                                                ".every(a => a.readyState >= 1)"))
    assert _severe(driver) == []
    driver.save_screenshot(str(ARTIFACTS / "run_espeak_tts_demo.png"))


def test_reference_speech_plays_beside_the_generated(site, browser):
    driver = _open(browser, site / "run_dummy__tts_vctk.html")
    _wait(driver, lambda: driver.execute_script(
        "return Array.from(document.querySelectorAll('audio')).every(a => a.readyState >= 1 || a.error)"))
    cards = driver.execute_script(
        "return Array.from(document.querySelectorAll('#samples article.sample')).map(c => "
        "Array.from(c.querySelectorAll('figure[data-kind=audio]')).map(f => "
        "[f.querySelector('figcaption').textContent, f.querySelector('audio').duration, "
        "f.querySelector('audio').error && f.querySelector('audio').error.code]))")
    assert len(cards) == 2
    for figures in cards:  # the generated wav and the speaker's flac, both decoded by the browser
        assert [f[0] for f in figures] == ["generated audio", "reference_audio"]
        assert all(f[1] > 0 and f[2] is None for f in figures)
    assert figures[1][1] == pytest.approx(0.6, abs=0.01)
    assert _severe(driver) == []


def test_image_run_page_shows_generated_beside_reference(site, browser):
    driver = _open(browser, site / "run_oracle__t2i_coco_karpathy.html")
    _wait(driver, lambda: driver.execute_script("return Array.from(document.images).every(i => i.complete)"))
    figures = driver.execute_script(
        "return Array.from(document.querySelectorAll('.sample figure[data-kind=image]'))"
        ".map(f => [f.querySelector('figcaption').textContent, f.querySelector('img').naturalWidth])")
    labels = [label for label, _ in figures]
    assert labels.count("generated image") == 3 and labels.count("reference") == 3
    assert all(width > 0 for _, width in figures)
    scores = driver.execute_script("return document.querySelector('.sample .scores').textContent")
    assert "clip_i" in scores and "ssim" in scores
    assert _severe(driver) == []
    driver.save_screenshot(str(ARTIFACTS / "run_t2i.png"))


def test_compare_page_pairs_samples_with_their_difference(site, browser):
    driver = _open(browser, site / "compare_tts_demo.html")
    rows = driver.execute_script("return Array.from(document.querySelectorAll('.compare-row')).map(r => "
                                 "[r.dataset.id, r.querySelectorAll('article.sample').length, "
                                 "r.querySelector('.delta').textContent])")
    assert sorted(r[0] for r in rows) == ["harvard01_001", "harvard01_002"]
    assert all(n == 2 and d.startswith("B − A") for _, n, d in rows)
    assert driver.execute_script("return document.querySelectorAll('.compare-row audio').length") == 4
    _set(driver, "search", "dark blue")
    assert driver.execute_script("return document.querySelectorAll('.compare-row').length") == 1
    assert _severe(driver) == []
    driver.save_screenshot(str(ARTIFACTS / "compare_tts_demo.png"))
