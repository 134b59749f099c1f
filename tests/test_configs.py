from importlib import resources
from pathlib import Path

import pytest

from mio_eval.adapter import ModelAdapter
from mio_eval.api import build, compose
from mio_eval.config import CHECKED_GROUPS, group_choices

CONFIGS = Path(__file__).resolve().parents[1] / "configs"
# Values a config leaves required (???), supplied as a user would.
REQUIRED = {("model", "whisper"): ["model.path=/nonexistent/whisper.pt"]}


def _names(group):
    return sorted(p.stem for p in (CONFIGS / group).glob("*.yaml"))


def test_group_choices_match_files():
    for group in CHECKED_GROUPS:
        assert group_choices(group) == _names(group)
    assert (resources.files("mio_eval.configs") / "eval.yaml").is_file()


@pytest.mark.parametrize("task", _names("task"))
def test_every_task_config_instantiates(task):
    cfg = compose([f"task={task}", "model=dummy"])
    built_task, adapter = build(cfg)
    assert built_task.name == task
    assert callable(built_task.samples) and callable(built_task.score)


@pytest.mark.parametrize("model", _names("model"))
def test_every_model_config_instantiates_without_loading(model):
    cfg = compose(["task=tts_demo", f"model={model}", *REQUIRED.get(("model", model), [])])
    _, adapter = build(cfg)
    assert isinstance(adapter, ModelAdapter)
    assert adapter.name == model and adapter.inputs and adapter.outputs


@pytest.mark.parametrize("experiment", _names("experiment"))
def test_every_experiment_composes(experiment):
    cfg = compose(["task=tts_demo", f"experiment={experiment}"])
    build(cfg)
    assert cfg != compose(["task=tts_demo"]), "an experiment is a non-empty set of overrides"
