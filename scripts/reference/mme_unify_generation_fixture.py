"""Write ``tests/reference/mme_unify_generation/``: MME-Unify's official generation and unify scorers
on the fixture of ``tests/reference/mme_unify_generation_cases.py``.

Reference: aba122/MME-Unify @095609165e55a230c85c6f77f25f21aa77f51a66 (never committed)
``evaluate/Evaluate_Generation.py`` (FIR / TIE / TIG), ``evaluate/Evaluate_Generation_Video.py``
(CIVG / TVG / VP, and its ``extract_keyframes``), ``evaluate/Evaluate_IEE.py``, ``Evaluate_CS.py``,
``Evaluate_Math_Geo.py`` (AL), ``Evaluate_SpotDiff.py``, ``Evaluate_VSP.py`` (VCoT). Each file is
executed unchanged as a module; only the model-loading names are replaced afterwards:
``CLIPModel`` / ``CLIPProcessor`` load the tiny CLIP folder whatever name they are given, torchvision's
``alexnet`` (inside the ``lpips`` package), ``resnet50`` and ``inception_v3`` get the fixture's seeded
weights (Inception: seeded torchvision init; its per-frame FID is not compared), the hard-coded
result-file and image-base paths point at the fixture. Outputs:

* generation images: per item ``evaluate_reconstruction`` / ``evaluate_editing`` /
  ``evaluate_generation`` (PSNR, LPIPS, CLIP-I cosine, CLIP-T = ``logits_per_image``), and
  ``main()``'s printed per-category means;
* generation videos: ``extract_keyframes`` on each generated video (the JPEG key frames it writes are
  committed: the scorer reads those, not the video), per item the raw FVD-style distance from the
  scorer's own methods in ``process_*``'s order, and ``process_dataset``'s results (per-frame CLIP
  scores, ``fvd_score``, ``fvd_normalized``); key frame indices of extra videos;
* unify: our ``mme_unify_unify`` run's submission file (oracle model answering the fixture's raw
  replies), split per task and scored by each official script, on every single item and on the whole
  list.

Usage: ``python scripts/reference/mme_unify_generation_fixture.py [--cache DIR]``
(``REF_ABA122_MME_UNIFY`` = a local clone). Needs opencv-python (the video scorer's reader).
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
import shutil
import sys
import tempfile
import types
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(ROOT / "tests" / "reference"))
from _sources import arguments, show, source  # noqa: E402

import mme_unify_generation_cases as cases  # noqa: E402

REPO, COMMIT = "aba122/MME-Unify", "095609165e55a230c85c6f77f25f21aa77f51a66"
OUT = ROOT / "tests" / "reference" / "mme_unify_generation"
CODES = {"Fine-Grained_Image_Reconstruction": "FIR", "Text-Image_Editing": "TIE", "Text-Image_Generation": "TIG",
         "Conditional_Image_to_Video_Generation": "CIVG", "Text-to-Video_Generation": "TVG", "Video prediction": "VP"}


class _Redirect:
    """``from_pretrained(<any name>)`` -> ``cls.from_pretrained(path)``."""

    def __init__(self, cls, path):
        self.cls, self.path = cls, str(path)

    def from_pretrained(self, _name, *args, **kwargs):
        return self.cls.from_pretrained(self.path, *args, **kwargs)


def _module(git_dir, name: str, models: dict) -> dict:
    import torch
    import torchvision
    from transformers import CLIPModel, CLIPProcessor

    code = show(git_dir, COMMIT, f"evaluate/{name}.py")
    ns: dict = {"__name__": name}
    exec(compile(code, f"evaluate/{name}.py", "exec"), ns)
    # model loading only: the hub names resolve to the fixture's tiny checkpoints
    if "CLIPModel" in ns:
        ns["CLIPModel"], ns["CLIPProcessor"] = _Redirect(CLIPModel, models["clip"]), _Redirect(CLIPProcessor, models["clip"])

    def resnet50(pretrained=False, **_):
        model = torchvision.models.resnet50(weights=None)
        model.load_state_dict(torch.load(models["resnet50"], weights_only=True))
        return model

    def inception_v3(pretrained=False, **_):
        torch.manual_seed(cases.SEED)
        return torchvision.models.inception_v3(weights=None, aux_logits=True, init_weights=True)

    if "models" in ns:
        ns["models"] = types.SimpleNamespace(resnet50=resnet50, inception_v3=inception_v3)
    return ns


def _patch_lpips_alexnet(path) -> None:
    import lpips.pretrained_networks as pn
    import torch
    import torchvision

    def alexnet(pretrained=True, **_):
        model = torchvision.models.alexnet(weights=None)
        missing = model.load_state_dict(torch.load(path, weights_only=True), strict=False)
        assert not [k for k in missing.missing_keys if k.startswith("features.")]
        return model

    pn.tv = types.SimpleNamespace(alexnet=alexnet, vgg16=None, squeezenet1_1=None)


def _generation_images(git_dir, models, built, tmp: Path) -> dict:
    ns = _module(git_dir, "Evaluate_Generation", models)
    items = json.loads((built["data_root"] / "Unify_Dataset/Generation/Generation_Unified.json").read_text())
    key, errors = built["key"], built["official"]["errors"]
    evaluator = ns["ImageEvaluator"]()
    evaluator.base_path = str(built["data_root"])
    per_item, inputs = {}, []
    for item in items:
        code = CODES[item["category"]]
        if code not in ("FIR", "TIE", "TIG"):
            continue
        sid = f"{code}-{item['id']}"
        out = key.get(sid, {}).get("image", "")
        row = {**item, "output": {"output_image": out}}
        if sid in errors:
            row["error"] = errors[sid]
        inputs.append(row)
        if not out or sid in errors:
            continue
        if code == "FIR":
            res = evaluator.evaluate_reconstruction(out, item["data"]["image"])
        elif code == "TIE":
            res = evaluator.evaluate_editing(out, item["data"]["edited_image"], item["Text_Prompt"])
        else:
            res = evaluator.evaluate_generation(out, item["data"]["image"], item["Text_Prompt"])
        per_item[sid] = {k: float(v) for k, v in res.items()}
    result_file = tmp / "generation_result.json"
    result_file.write_text(json.dumps(inputs))
    hard_coded = "/data/xwl/xwl_code/Unify_Benchmark/results/Generation/OmniGen/result.json"
    ns["open"] = lambda path, *a, **k: open(result_file if path == hard_coded else path, *a, **k)
    base = ns["ImageEvaluator"]

    class Evaluator(base):  # the same class, its hard-coded image base path pointed at the fixture
        def __init__(self):
            super().__init__()
            self.base_path = str(built["data_root"])

    ns["ImageEvaluator"] = Evaluator
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        ns["main"]()
    means, category = {}, None
    for line in printed.getvalue().splitlines():
        if m := re.match(r"^(\S+):$", line):
            category = CODES[m.group(1)]
            means[category] = {}
        elif (m := re.match(r"^(psnr|lpips|clip_i|clip_t|lpips_d): (\S+)$", line)) and category:
            means[category][m.group(1)] = float(m.group(2))
        elif (m := re.match(r"^Total processed samples: (\d+)$", line)) and category:
            means[category]["n"] = int(m.group(1))
    return {"per_item": per_item, "printed_means": means, "stdout": printed.getvalue()}


def _generation_videos(git_dir, models, built, tmp: Path) -> dict:
    ns = _module(git_dir, "Evaluate_Generation_Video", models)
    data_root = built["data_root"]
    items = json.loads((data_root / "Unify_Dataset/Generation/Generation_Unified.json").read_text())
    quiet = io.StringIO()
    keyframes, inputs = {}, []
    with contextlib.redirect_stdout(quiet):
        for item in items:
            code = CODES[item["category"]]
            if code not in ("CIVG", "TVG", "VP"):
                continue
            sid = f"{code}-{item['id']}"
            video = built["key"][sid]["video"]
            frames = ns["extract_keyframes"](video, output_dir=str(OUT / "keyframes" / sid))
            keyframes[sid] = [int(re.search(r"keyframe_(\d+)\.jpg$", f).group(1)) for f in frames]
            inputs.append({**item, "output": video, "output2": frames})
        extra = {}
        for name in cases.KEYFRAME_VIDEOS:
            frames = ns["extract_keyframes"](str(built["answers_dir"] / "keyframes" / f"{name}.mp4"),
                                             output_dir=str(tmp / "kf" / name))
            extra[name] = [int(re.search(r"keyframe_(\d+)\.jpg$", f).group(1)) for f in frames]
    calc = ns["VideoMetricsCalculator"]()
    per_item = {}
    for row in inputs:  # the distance as process_* computes it, item by item, with the scorer's methods
        code = CODES[row["category"]]
        ref = row["data"].get("video" if code != "TVG" else "image")
        if not ref:
            continue
        gen = calc.load_frame_sequence(row["output2"])
        real = calc.load_and_sample_mp4(f"{str(data_root).rstrip('/')}/{ref.lstrip('/')}", len(row["output2"]))
        per_item[f"{code}-{row['id']}"] = {"fvd": float(calc.calculate_fvd(calc.extract_features(real),
                                                                         calc.extract_features(gen)))}
    json_path = tmp / "video_result.json"
    # committed key frame paths are relative to the fixture folder
    json_path.write_text(json.dumps(inputs))
    cwd = os.getcwd()
    os.chdir(tmp)
    try:
        with contextlib.redirect_stdout(quiet):
            results = calc.process_dataset(str(json_path), str(data_root))
    finally:
        os.chdir(cwd)
    for part in results.values():
        for entry in part.get("clip_scores", []):
            code = next(CODES[r["category"]] for r in inputs if r["id"] == entry["id"])
            per_item.setdefault(f"{code}-{entry['id']}", {})["clip_frame_scores"] = [float(x) for x in entry["frame_scores"]]
    summary = {name: {k: part[k] for k in ("total_samples", "processed_samples", "skipped_samples", "fvd_score",
                                           "fvd_normalized") if k in part} | {"n_clip": len(part.get("clip_scores", []))}
               for name, part in results.items()}
    for name, part in results.items():
        if part.get("clip_scores"):
            summary[name]["clip_mean"] = float(sum(float(e["mean_score"]) for e in part["clip_scores"])
                                               / len(part["clip_scores"]))
    return {"keyframes": keyframes, "keyframe_videos": extra, "per_item": per_item, "summary": summary}


def _ours_unify(built, models, tmp: Path) -> list[dict]:
    """Our unify run on the fixture's replies (oracle model); returns its submission file."""
    from mio_eval import run

    metrics = run("mme_unify_unify", "oracle", [
        f"paths.results_dir={tmp / 'results'}", "runner.progress=false", "runner.max_error_rate=1.0",
        f"paths.data_dir={built['data_root'].parent}",
        f"model.answers_path={built['answers_dir'] / 'key.json'}", f"task.clip.path={models['clip']}",
        *cases.official_unify_variants(ROOT / "configs")])
    # the submission file is an artifact beside metrics.json, named relative to the run dir
    return json.loads((tmp / "results" / metrics["model"] / metrics["task"] / metrics["scoring"]["submission"]).read_text())


def _unify(git_dir, models, built, tmp: Path) -> dict:
    export = _ours_unify(built, models, tmp)
    base = str(built["data_root"])
    families = {"IEE": lambda e: "edited_image" in e.get("data", {}), "CSQ": lambda e: e.get("subcategory") == "Common_Sense_Question",
                "AL": lambda e: e.get("subcategory") == "Math_Reasoning", "SD": lambda e: e.get("subcategory") == "SpotDiff",
                "VCoT": lambda e: e.get("category") == "Visual CoT"}
    mods = {code: _module(git_dir, name, models) for code, name in
            {"IEE": "Evaluate_IEE", "CSQ": "Evaluate_CS", "AL": "Evaluate_Math_Geo", "SD": "Evaluate_SpotDiff",
             "VCoT": "Evaluate_VSP"}.items()}
    mods["AL"]["IMAGE_BASE_PATH"] = base

    def score(code, items, name):
        path = tmp / code / name / "result.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(items, ensure_ascii=False))
        ns = mods[code]
        cwd = os.getcwd()
        os.chdir(path.parent)  # IEE / VSP write evaluation_results.json into the working directory
        try:
            with contextlib.redirect_stdout(io.StringIO()):
                if code == "IEE":
                    return ns["evaluate_results"](str(path), base)
                if code == "CSQ":
                    ns["evaluate_results"](types.SimpleNamespace(input_json=str(path), base_path=base))
                    return json.loads((path.parent / "evaluation_results.json").read_text())
                if code == "AL":
                    return ns["Evaluator"]().calculate_metrics(items)
                if code == "SD":
                    return ns["evaluate_results"](str(path), base)
                return ns["VisualCoTEvaluator"](str(path), base).calculate_accuracies()
        except Exception as exc:  # noqa: BLE001 - a crash of the official scorer is a result too
            return {"crash": f"{type(exc).__name__}: {exc}"}
        finally:
            os.chdir(cwd)

    out = {}
    for code, pick in families.items():
        items = [e for e in export if pick(e)]
        per_item = {}
        for item in items:
            sid = f"{code}-{item.get('id', item.get('question_id'))}"
            per_item[sid] = score(code, [item], sid)
        out[code] = {"n": len(items), "all": score(code, items, "all"), "per_item": per_item}
    # the submission as scored, media paths reduced to file names
    def strip(value):
        if isinstance(value, dict):
            return {k: strip(v) for k, v in value.items()}
        if isinstance(value, list):
            return [strip(v) for v in value]
        return Path(value).name if isinstance(value, str) and value.startswith(str(tmp)) else value

    return {"families": out, "submission": strip(export)}


def main(argv=None) -> int:
    args = arguments(__doc__, argv)
    git_dir = source(REPO, COMMIT, cache=args.cache)
    if (OUT / "keyframes").exists():
        shutil.rmtree(OUT / "keyframes")
    OUT.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        built = cases.build(tmp / "data")
        models = {"clip": cases.tiny_clip(tmp / "models" / "tiny-clip"),
                  "alexnet": cases.alexnet_state(tmp / "models" / "alexnet.pth"),
                  "resnet50": cases.resnet50_state(tmp / "models" / "resnet50.pth")}
        _patch_lpips_alexnet(models["alexnet"])
        fixture = {
            "reference": f"{REPO}@{COMMIT} evaluate/",
            "script": "scripts/reference/mme_unify_generation_fixture.py",
            "inputs": {"weights_digest": cases.weights_digest([models["clip"] / "model.safetensors", models["alexnet"],
                                                               models["resnet50"]]),
                       "data_digest": cases.media_digest(built["data_root"]),
                       "answers_digest": cases.media_digest(built["answers_dir"])},
            "generation_image": _generation_images(git_dir, models, built, tmp),
            "generation_video": _generation_videos(git_dir, models, built, tmp),
            "unify": _unify(git_dir, models, built, tmp),
        }
    (OUT / "reference.json").write_text(json.dumps(fixture, indent=1, ensure_ascii=False) + "\n")
    print(json.dumps({k: fixture[k] for k in ("generation_image",)}, indent=1)[:3000])
    print(f"wrote {OUT}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
