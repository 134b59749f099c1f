"""Typed ``generation`` settings: unknown keys and mistyped values are refused when the task is
built (exit 2, one line naming the key and the valid ones), never silently ignored."""

from __future__ import annotations

import re
import subprocess
import sys
from dataclasses import FrozenInstanceError
from pathlib import Path

import pytest

from mio_eval.errors import ConfigError
from mio_eval.generation import GENERATION_KEYS, GenerationConfig, generation_settings
from mio_eval.tasks.vqa import VQATask

MODELS = Path(__file__).resolve().parents[1] / "mio_eval" / "models"


def test_known_keys_pass_through_as_a_plain_dict():
    settings = {"num_beams": 5, "do_sample": False, "max_new_tokens": 16, "until": ["ASSISTANT:"], "top_p": 0.7}
    assert generation_settings(settings) == settings
    assert generation_settings(None) == {} and generation_settings({"temperature": None}) == {}
    config = GenerationConfig.from_mapping({"until": ["a", "b"]})
    assert config.until == ("a", "b")
    with pytest.raises(FrozenInstanceError):
        config.num_beams = 3  # type: ignore[misc]
    with pytest.raises(TypeError):
        GenerationConfig(5)  # type: ignore[misc]  # keyword-only


def test_unknown_and_mistyped_keys_are_refused():
    with pytest.raises(ConfigError, match=r"^unknown key task.generation.num_beam \(did you mean 'num_beams'\?\); "
                                          r"valid keys: max_new_tokens, num_beams, "):
        generation_settings({"num_beam": 5})
    with pytest.raises(ConfigError, match=r"^task.generation.num_beams must be int, got str '5'$"):
        generation_settings({"num_beams": "5"})
    with pytest.raises(ConfigError, match=r"do_sample must be bool, got int 1"):
        generation_settings({"do_sample": 1})
    with pytest.raises(ConfigError, match=r"until must be str or list of str"):
        generation_settings({"until": [1]})
    with pytest.raises(ConfigError, match="unknown key task.generation.beams"):
        VQATask(name="v", loader=list, generation={"beams": 5})


def test_every_key_an_adapter_reads_is_known():
    # The union of what adapters read from Request.generation must stay in GenerationConfig.
    read = set()
    for path in MODELS.rglob("*.py"):
        text = path.read_text(encoding="utf-8")
        read |= set(re.findall(r"generation(?:\.get\(|\[)\"(\w+)\"", text))
        for group in re.findall(r"generation\[k\]\) for k in \(([^)]*)\)", text):  # mio: length_penalty, top_k
            read |= set(re.findall(r"\"(\w+)\"", group))
    from mio_eval.models.diffusers_t2i import _KEYS  # read as gen.get(k, default) for k in _KEYS

    read |= set(_KEYS)
    assert {"max_new_tokens", "until", "chat", "video_frames", "length_penalty", "top_k", "guidance_scale"} <= read
    assert read and read <= set(GENERATION_KEYS), read - set(GENERATION_KEYS)


def test_cli_refuses_a_typo_with_exit_2(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "mio_eval.cli", "task=tts_demo", "model=dummy",
                           "+task.generation.max_new_token=8", f"paths.results_dir={tmp_path / 'r'}"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in proc.stderr
    assert "unknown key task.generation.max_new_token (did you mean 'max_new_tokens'?)" in lines[0]
    assert not (tmp_path / "r").exists()
