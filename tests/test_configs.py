"""Every shipped config composes and instantiates on CPU, offline, without loading weights.

The YAML files are discovered by globbing ``configs/``, so a new task, model or experiment file
is covered without touching this test. A value a config leaves required (``???``) is supplied
the way a user would (a path to a local file), from ``SUPPLY`` below.
"""

import fnmatch
import json
import socket
import subprocess
import sys
from importlib import resources
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from mio_eval.adapter import ModelAdapter
from mio_eval.api import build, compose
from mio_eval.config import CHECKED_GROUPS, ExperimentScope, group_choices
from mio_eval.errors import ConfigError, MioEvalError
from mio_eval.types import Modality

CONFIGS = Path(__file__).resolve().parents[1] / "configs"
BUILT_GROUPS = ("task", "model", "experiment")
# Heavy backends that only an adapter's or a judge's load() may import.
HEAVY = ("torch", "whisper", "transformers", "pocketsphinx", "torchaudio")


def _names(group):
    return sorted(p.stem for p in (CONFIGS / group).glob("*.yaml"))


CASES = [(group, name) for group in BUILT_GROUPS for name in _names(group)]


def _task_for(group, name):
    """The task to pair with a model or an experiment: the first task inside the experiment's typed
    ``experiment_scope`` (e.g. TTS-only judge settings), otherwise the first task."""
    patterns = ("*",)
    if group == "experiment":
        scope = ExperimentScope.of(OmegaConf.load(CONFIGS / group / f"{name}.yaml"))
        patterns = scope.tasks if scope is not None else patterns
    matching = [t for t in _names("task") if any(fnmatch.fnmatchcase(t, p) for p in patterns)]
    assert matching, f"{group}/{name}: no task matches {patterns!r}"
    return matching[0]


def _base_overrides(group, name):
    """The overrides that select one config: a task needs a model and vice versa."""
    overrides = [f"{group}={name}"]
    if group != "task":
        overrides.append(f"task={_task_for(group, name)}")
    if group != "model":
        overrides.append("model=dummy")
    return overrides


def _supply(key, tmp_path):
    """A value for a required (``???``) key, as a user would give it: a local file or folder."""
    leaf = key.rsplit(".", 1)[-1]
    if leaf == "path" or leaf.endswith("_path"):
        local = tmp_path / f"{key.replace('.', '_')}.bin"
        local.write_bytes(b"not a real checkpoint: build() must not read it")
        return str(local)
    if leaf in ("root", "dir") or leaf.endswith("_dir"):
        return str(tmp_path)
    if key == "model.format":  # model=replay: the prediction file's format
        return "answers"
    pytest.fail(f"{key} is required (???) and this test does not know how to supply it: extend _supply()")


def _overrides(group, name, tmp_path):
    overrides = _base_overrides(group, name)
    missing = sorted(OmegaConf.missing_keys(compose(overrides)))
    return overrides + [f"{key}={_supply(key, tmp_path)}" for key in missing]


@pytest.fixture
def offline(monkeypatch):
    """Any attempt to open a network connection fails the test."""

    def refuse(self, address, *args, **kwargs):
        raise AssertionError(f"a config tried to reach the network: {address!r}")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)
    monkeypatch.setattr(socket, "create_connection", lambda address, *a, **k: refuse(None, address))


def test_case_discovery_found_configs():
    assert ("task", "tts_demo") in CASES and ("model", "dummy") in CASES and ("experiment", "smoke") in CASES


def test_group_choices_match_files():
    groups = {p.parent.name for p in CONFIGS.glob("*/*.yaml")}
    assert set(CHECKED_GROUPS) <= groups | {"experiment"}
    for group in sorted(groups | set(CHECKED_GROUPS)):
        assert group_choices(group) == _names(group), group
    assert group_choices("no_such_group") == []
    # The installed package carries the same files (configs/ installs as mio_eval.configs).
    installed = resources.files("mio_eval.configs")
    assert (installed / "eval.yaml").is_file()
    for group, name in CASES:
        assert (installed / group / f"{name}.yaml").is_file()


@pytest.mark.parametrize("group,name", CASES, ids=[f"{g}/{n}" for g, n in CASES])
def test_config_composes_and_builds_on_cpu_offline(group, name, tmp_path, offline):
    cfg = compose(_overrides(group, name, tmp_path))
    assert not OmegaConf.missing_keys(cfg), "every ??? value was supplied"
    devices = [v for k, v in _leaves(OmegaConf.to_container(cfg, resolve=False)) if k.endswith("device")]
    assert all(d in (None, "cpu") for d in devices), f"a config defaults to a GPU: {devices}"

    task, adapter = build(cfg)

    assert task.name == cfg.task.name and adapter.name == cfg.model.name
    if group == "task":
        assert task.name == name
    if group == "model":  # a backend with a checkpoint path names its run dir after the checkpoint
        raw = OmegaConf.to_container(cfg.model, resolve=False)["name"]
        expected = f"{name}-{Path(cfg.model.path).name}" if raw.startswith("${mio_run_name:") else name
        assert adapter.name == expected
    assert isinstance(adapter, ModelAdapter)
    assert adapter.inputs and adapter.outputs
    assert all(isinstance(m, Modality) for m in (*adapter.inputs, *adapter.outputs))
    assert task.input_modalities and isinstance(task.output_modality, Modality)
    assert set(type(task).scoring_keys) <= set(cfg.task), "scoring_keys must name task config keys"


@pytest.mark.parametrize("name", _names("task"))
def test_task_samples_load_or_fail_as_data(name, offline):
    """Embedded data sets load and carry the task's generation settings into the request; a data
    set that is not on this machine fails with a typed, one-line error (never a crash or [])."""
    cfg = compose([f"task={name}", "model=dummy"])
    task, _ = build(cfg)
    try:
        samples = task.samples()
    except MioEvalError as exc:
        assert str(exc) and "\n" not in str(exc)
        return
    assert samples, f"task {name} loaded no samples"
    assert len({s.id for s in samples}) == len(samples)
    request = task.request(samples[0])
    assert request.sample_id == samples[0].id
    assert request.output_modality == task.output_modality
    generation = OmegaConf.to_container(cfg.task, resolve=True).get("generation")
    if generation is not None:
        assert dict(request.generation) == generation


@pytest.mark.parametrize("name", _names("experiment"))
def test_experiment_is_overrides_only_and_applied(name):
    path = CONFIGS / "experiment" / f"{name}.yaml"
    data = OmegaConf.to_container(OmegaConf.load(path))
    is_global = "@package _global_" in path.read_text()
    overrides = {k: v for k, v in data.items() if k != "defaults"}
    cfg = compose([f"task={_task_for('experiment', name)}", f"experiment={name}"])
    base = compose([f"task={_task_for('experiment', name)}"])
    assert cfg != base, "an experiment is a non-empty set of overrides"
    # No new objects: a _target_ may only re-select the class of a node the task already builds
    # (a behaviour chosen by _target_, e.g. task.normalizer: SeedTTS instead of WhisperEnglish).
    for key, _ in _leaves(overrides):
        if key == "_target_" or key.endswith("._target_"):
            full = key if is_global else f"experiment.{key}"
            try:
                before = _raw_select(base, full)
            except (KeyError, TypeError):
                before = None
            assert isinstance(before, str), f"{full}: an experiment holds overrides, not new objects"
    for key, value in _leaves(overrides):
        full = key if is_global else f"experiment.{key}"
        assert _raw_select(cfg, full) == value, full  # compared as written (interpolations unresolved)


def test_building_every_config_imports_no_heavy_backend(tmp_path):
    """In a fresh interpreter (this one may already hold torch from other tests)."""
    all_overrides = [_overrides(group, name, tmp_path) for group, name in CASES]
    code = (
        "import json, sys\n"
        "from mio_eval.api import build, compose\n"
        f"for overrides in {all_overrides!r}:\n"
        "    build(compose(overrides))\n"
        f"print(json.dumps(sorted(m for m in {HEAVY!r} if m in sys.modules)))\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert json.loads(proc.stdout.strip().splitlines()[-1]) == []


def _raw_select(cfg, dotted):
    """The value at ``dotted`` as the YAML wrote it (``${...}`` interpolations unresolved)."""
    node = OmegaConf.to_container(cfg, resolve=False)
    for part in dotted.split("."):
        node = node[part]
    return node


def _leaves(data, prefix=""):
    if isinstance(data, dict):
        for key, value in data.items():
            yield from _leaves(value, f"{prefix}{key}" if not prefix else f"{prefix}.{key}")
    else:
        yield prefix, data


def test_run_dir_names_carry_the_checkpoint_identity():
    from mio_eval.api import compose

    names = {compose(["task=mmlu", "model=hf_lm", f"model.path=/ckpt/{ckpt}"]).model.name
             for ckpt in ("Llama-3.2-1B", "Qwen2.5-0.5B")}
    assert names == {"hf_lm-Llama-3.2-1B", "hf_lm-Qwen2.5-0.5B"}  # two checkpoints never share a run dir
    assert compose(["task=tts", "model=whisper", "model.path=/c/whisper/medium.pt"]).model.name == "whisper-medium.pt"
    assert compose(["task=mmlu", "model=hf_lm", "model.path=/x", "model.name=mine"]).model.name == "mine"


SHARED_BLOCKS = ("generation", "clip")  # decoding and the CLIP encoder: written once, in configs/_common/


def _raw_blocks():
    """(file, block name, items as written) of every decoding / CLIP block in a task, model,
    experiment or shared YAML, read without composing (what the file itself spells out)."""
    for path in sorted(CONFIGS.glob("*/**/*.yaml")):
        data = OmegaConf.to_container(OmegaConf.load(path), resolve=False)
        if not isinstance(data, dict):
            continue
        task = data.get("task") if isinstance(data.get("task"), dict) else {}  # experiments: task.<block>
        for name in SHARED_BLOCKS:
            for block in (data.get(name), task.get(name)):
                if isinstance(block, dict):
                    yield path.relative_to(CONFIGS), name, {k: json.dumps(v) for k, v in block.items()}


def test_decoding_and_clip_blocks_are_not_repeated():
    """A decoding or CLIP setting shared by several tasks lives in one configs/_common/ file that
    the tasks pull in through their defaults list: no two YAMLs spell out the same two or more
    settings of such a block (a task adds only what is its own, e.g. max_new_tokens)."""
    blocks = list(_raw_blocks())
    assert blocks, "found no generation / clip blocks to check"
    repeated = []
    for i, (path_a, name_a, items_a) in enumerate(blocks):
        for path_b, name_b, items_b in blocks[i + 1:]:
            shared = {k for k in items_a.keys() & items_b.keys() if items_a[k] == items_b[k]}
            if name_a == name_b and len(shared) >= 2:
                repeated.append(f"{path_a} and {path_b} repeat {name_a}: {sorted(shared)}")
    assert not repeated, "\n".join(repeated)
    # MIO's beam-5 decoding and the CLIP encoder's class are each written in exactly one file.
    texts = {p.relative_to(CONFIGS): p.read_text() for p in CONFIGS.glob("*/**/*.yaml")}
    assert [p for p, t in texts.items() if "num_beams: 5" in t] == [Path("_common/decoding/mio_beam5.yaml")]
    assert [p for p, t in texts.items() if "HFClipEncoder" in t] == [Path("_common/clip/hf_vit_l14.yaml")]


@pytest.mark.parametrize("name", ["vqav2_val", "t2i_coco_karpathy", "mme_unify_unify", "tts_vctk", "video_gen_msrvtt"])
def test_shared_blocks_compose_into_the_task(name):
    """The shared blocks land at task.generation / task.clip, under the task's own keys."""
    task = OmegaConf.to_container(compose([f"task={name}"]).task, resolve=False)
    beam = {"num_beams": 5, "do_sample": False}
    sampling = {"num_beams": 1, "do_sample": True, "top_p": 0.7, "repetition_penalty": 1.15, "seed": 0}
    expected = {
        "vqav2_val": ({**beam, "max_new_tokens": 16}, None),
        "t2i_coco_karpathy": ({**beam, "repetition_penalty": 1.15, "top_p": 0.7, "seed": 0}, "clip-vit-large-patch14"),
        "mme_unify_unify": ({**beam, "repetition_penalty": 1.15}, "clip-vit-base-patch32"),
        "tts_vctk": ({**sampling, "max_new_tokens": 1024}, None),
        "video_gen_msrvtt": (sampling, "clip-vit-large-patch14"),
    }[name]
    assert task["generation"] == expected[0]
    if expected[1]:
        assert task["clip"] == {"_target_": "mio_eval.metrics.clip_score.HFClipEncoder",
                                "path": "${paths.checkpoints_dir}/" + expected[1], "device": "cpu"}


@pytest.mark.parametrize("name", _names("experiment"))
def test_experiment_selects_its_task_and_refuses_others(name, tmp_path):
    """An experiment chooses its default task with Hydra's ``override /task`` (no parsed comment);
    a task on the command line wins; a task outside its ``experiment_scope`` is a one-line error."""
    text = (CONFIGS / "experiment" / f"{name}.yaml").read_text()
    assert "# tasks:" not in text, "the task scope is the typed experiment_scope key, not a comment"
    scope = ExperimentScope.of(OmegaConf.load(CONFIGS / "experiment" / f"{name}.yaml"))
    if scope is None:  # applies to every task (smoke)
        assert "override /task" not in text
        return
    assert scope.experiment == name
    own = compose([f"experiment={name}"]).task.name
    assert scope.matches(own) and own in _names("task")
    inside = [t for t in _names("task") if scope.matches(t)]
    chosen = next(t for t in inside if t != own) if len(inside) > 1 else own
    assert compose([f"task={chosen}", f"experiment={name}"]).task.name == chosen  # the command line wins
    outside = next(t for t in _names("task") if not scope.matches(t))
    with pytest.raises(ConfigError) as err:
        build(compose([f"task={outside}", f"experiment={name}", "model=dummy"]))
    assert f"experiment={name} applies to tasks" in str(err.value) and f"task={outside}" in str(err.value)
    assert "\n" not in str(err.value)


def test_experiment_scope_is_typed():
    assert ExperimentScope.of(OmegaConf.create({})) is None
    scope = ExperimentScope.of(OmegaConf.create({"experiment_scope": {"experiment": "x", "tasks": ["tts_*", "s2s"]}}))
    assert scope == ExperimentScope(experiment="x", tasks=("tts_*", "s2s"))
    assert scope.matches("s2s") and scope.matches("tts_vctk") and not scope.matches("tts")
    for bad in ({"experiment": "x"}, {"experiment": "x", "tasks": "tts_*"}, {"experiment": "x", "tasks": []},
                {"experiment": "x", "tasks": ["a"], "other": 1}):
        with pytest.raises(ConfigError):
            ExperimentScope.of(OmegaConf.create({"experiment_scope": bad}))
