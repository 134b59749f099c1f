"""The wheel installs one top-level name, carries configs and data, and works in a fresh venv."""

import importlib.resources
import json
import subprocess
import sys
import venv
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_editable_install_resolves_the_mapped_packages():
    import mio_eval
    import mio_eval.configs
    import mio_eval.metrics
    import mio_eval.tasks

    eval_yaml = importlib.resources.files("mio_eval.configs") / "eval.yaml"
    assert eval_yaml.is_file() and "defaults" in eval_yaml.read_text()
    assert (importlib.resources.files("mio_eval.configs") / "task" / "tts_demo.yaml").is_file()
    # tasks/, metrics/ and configs/ at the repository top level are mio_eval's sub-packages.
    assert Path(mio_eval.__file__).resolve().parent == ROOT / "mio_eval"
    assert Path(mio_eval.tasks.__file__).resolve().parent == ROOT / "tasks"
    assert Path(mio_eval.metrics.__file__).resolve().parent == ROOT / "metrics"
    assert Path(mio_eval.configs.__file__).resolve().parent == ROOT / "configs"


@pytest.fixture(scope="module")
def wheel(tmp_path_factory):
    out = tmp_path_factory.mktemp("wheel")
    proc = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                           "-w", str(out), str(ROOT)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-3000:]
    (path,) = out.glob("mio_eval-*.whl")
    return path


@pytest.mark.slow
def test_wheel_contents(wheel):
    names = zipfile.ZipFile(wheel).namelist()
    assert {n.split("/")[0] for n in names} == {"mio_eval", "mio_eval-0.1.0.dist-info"}
    for required in ("mio_eval/__init__.py", "mio_eval/configs/__init__.py", "mio_eval/configs/eval.yaml",
                     "mio_eval/configs/task/tts_demo.yaml", "mio_eval/tasks/tts.py",
                     "mio_eval/tasks/loaders/vctk.py", "mio_eval/metrics/wer.py",
                     "mio_eval/metrics/normalizers.py", "mio_eval/models/espeak.py",
                     "mio_eval/data/tts_demo/README.md", "mio_eval/data/published.yaml",
                     "mio_eval/view/templates/app.js", "mio_eval/view/templates/page.html"):
        assert required in names, required
    txts = [n for n in names if n.startswith("mio_eval/data/tts_demo/txt/") and n.endswith(".txt")]
    assert len(txts) == 50
    assert all(len(Path(n).relative_to("mio_eval/data/tts_demo/txt").parts) == 2 for n in txts)  # txt/<spk>/<id>
    # Every yaml of the repo's configs/ is in the wheel.
    for yaml in ROOT.joinpath("configs").rglob("*.yaml"):
        assert f"mio_eval/configs/{yaml.relative_to(ROOT / 'configs').as_posix()}" in names
    entry_points = zipfile.ZipFile(wheel).read("mio_eval-0.1.0.dist-info/entry_points.txt").decode()
    assert "mio-eval = mio_eval.cli:entry" in entry_points


@pytest.mark.slow
def test_wheel_works_in_a_fresh_venv(wheel, tmp_path):
    env_dir = tmp_path / "venv"
    venv.EnvBuilder(system_site_packages=True, with_pip=True).create(env_dir)
    python = env_dir / "bin" / "python"
    proc = subprocess.run([python, "-m", "pip", "install", "-q", "--no-deps", str(wheel)],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-3000:]
    work = tmp_path / "elsewhere"
    work.mkdir()
    code = (
        "import json, sys\n"
        "import mio_eval\n"
        "assert 'torch' not in sys.modules, 'import mio_eval pulled in torch'\n"
        "import mio_eval.configs, mio_eval.metrics, mio_eval.tasks\n"
        "from mio_eval.api import compose\n"
        "from mio_eval.config import data_path\n"
        "cfg = compose(['task=tts_demo', 'model=dummy'])\n"
        "print(json.dumps({'files': [m.__file__ for m in (mio_eval, mio_eval.configs, mio_eval.metrics,\n"
        "                                                 mio_eval.tasks)],\n"
        "                  'task': cfg.task.name, 'target': cfg.task._target_, 'model': cfg.model.name,\n"
        "                  'data': data_path('tts_demo'), 'torch': 'torch' in sys.modules}))\n"
    )
    out = subprocess.run([python, "-c", code], cwd=work, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr[-3000:]
    info = json.loads(out.stdout.splitlines()[-1])
    for file in info["files"]:
        assert Path(file).is_relative_to(env_dir), file  # the installed copy, not the repository
    assert (info["task"], info["target"], info["model"]) == ("tts_demo", "mio_eval.tasks.tts.TTSTask", "dummy")
    assert Path(info["data"]).is_relative_to(env_dir)
    assert len(list(Path(info["data"]).glob("txt/*/*.txt"))) == 50
    assert info["torch"] is False
    help_out = subprocess.run([env_dir / "bin" / "mio-eval", "--help"], cwd=work, capture_output=True, text=True)
    assert help_out.returncode == 0, help_out.stderr[-3000:]
    assert "tts_demo" in help_out.stdout
    assert list(work.iterdir()) == []  # nothing written to the working directory
