"""The wheel installs one top-level name, carries configs and data, and works in a fresh venv."""

import subprocess
import sys
import venv
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory):
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(out),
                    str(ROOT)], check=True, capture_output=True)
    (path,) = out.glob("mio_eval-*.whl")
    return path


def test_wheel_contents(wheel):
    names = zipfile.ZipFile(wheel).namelist()
    assert {n.split("/")[0] for n in names} == {"mio_eval", "mio_eval-0.1.0.dist-info"}
    for required in ("mio_eval/configs/eval.yaml", "mio_eval/configs/task/tts_demo.yaml",
                     "mio_eval/configs/hydra/default.yaml", "mio_eval/tasks/tts.py",
                     "mio_eval/tasks/loaders/vctk.py", "mio_eval/metrics/wer.py", "mio_eval/models/espeak.py"):
        assert required in names
    assert len([n for n in names if n.startswith("mio_eval/data/tts_demo/txt/") and n.endswith(".txt")]) == 50


@pytest.mark.slow
def test_wheel_works_in_a_fresh_venv(wheel, tmp_path):
    env_dir = tmp_path / "venv"
    venv.EnvBuilder(system_site_packages=True, with_pip=True).create(env_dir)
    python = env_dir / "bin" / "python"
    subprocess.run([python, "-m", "pip", "install", "-q", "--no-deps", str(wheel)], check=True, capture_output=True)
    work = tmp_path / "elsewhere"
    work.mkdir()
    code = (
        "import sys, mio_eval\n"
        "assert 'torch' not in sys.modules\n"
        "from mio_eval.api import build, compose\n"
        "task, model = build(compose(['task=tts_demo', 'model=espeak']))\n"
        "print(mio_eval.__file__)\n"
        "print(len(task.samples()))\n"
    )
    out = subprocess.run([python, "-c", code], cwd=work, capture_output=True, text=True, check=True)
    location, count = out.stdout.split()
    assert Path(location).is_relative_to(env_dir) and count == "50"
    help_out = subprocess.run([env_dir / "bin" / "mio-eval", "--help"], cwd=work, capture_output=True, text=True)
    assert help_out.returncode == 0 and "tts_demo" in help_out.stdout
    assert list(work.iterdir()) == []
