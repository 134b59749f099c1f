"""Dump every composed config (each task, each task x experiment, each suite's tasks) as one JSON
file with sorted keys, so that a refactor of configs/ can be checked to change nothing:

    python scripts/dump_configs.py before.json   # on the old tree
    python scripts/dump_configs.py after.json    # on the new tree
    diff before.json after.json

A composition that fails is recorded as its one-line error (so a newly broken one shows up too).
Hydra's own node is left out (it holds run-time paths).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path


def dump() -> dict:
    from omegaconf import OmegaConf

    from mio_eval.api import compose, suite_tasks
    from mio_eval.config import group_choices

    out: dict = {}

    def one(key: str, overrides: list[str]) -> None:
        try:
            data = OmegaConf.to_container(compose(overrides), resolve=False)
            data.pop("hydra", None)
            out[key] = data
        except Exception as exc:  # noqa: BLE001 - recorded, compared like any other result
            out[key] = f"ERROR {type(exc).__name__}: {exc}"

    for task in group_choices("task"):
        one(f"task/{task}", [f"task={task}"])
        for experiment in group_choices("experiment"):
            one(f"task/{task}+{experiment}", [f"task={task}", f"experiment={experiment}"])
    for suite in group_choices("suite"):
        tasks, overrides = suite_tasks(suite)
        for task in tasks:
            one(f"suite/{suite}/{task}", [f"task={task}", *overrides])
    return out


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: python scripts/dump_configs.py OUT.json")
    configs = dump()
    Path(sys.argv[1]).write_text(json.dumps(configs, sort_keys=True, indent=1) + "\n")
    print(f"{len(configs)} composed configs -> {sys.argv[1]}")
