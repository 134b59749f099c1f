"""Loader errors shared by every dataset format: a missing data set says how to point at it, and a
malformed annotation says which file, which entry and what is wrong, in one line (ConfigError,
exit code 2), never a traceback.

Kept private (``_data``): the public surface is each dataset's loader class.
"""

from __future__ import annotations

import os
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

from mio_eval.errors import ConfigError

__all__ = ["data_not_found", "malformed_entry", "entry_field", "entry_id", "text_list"]

# configs/paths/default.yaml: data_dir: ${oc.env:MIO_EVAL_DATA,data}
_DATA_ENV = "MIO_EVAL_DATA"
_DEFAULT_DATA_DIR = "data"


def _data_dir() -> Path:
    return Path(os.environ.get(_DATA_ENV) or _DEFAULT_DATA_DIR)


def data_not_found(what: str, path: str | Path, *, key: str = "root", expected: str | None = None) -> ConfigError:
    """The error for a data set (root folder or annotation file) that is not where the config says.

    It names the path, the data dir it was looked up under when that is the default one
    (``$MIO_EVAL_DATA`` or ``./data``), and both ways to fix it: ``paths.data_dir=DIR`` (every
    task's data moves) or ``task.loader.<key>=PATH`` (this data set only). A loader receives
    resolved paths, so a data dir given as ``paths.data_dir=...`` is not named back.
    """
    path = Path(path)
    data_dir = _data_dir()
    try:
        inside = path.resolve().relative_to(data_dir.resolve())
    except (ValueError, OSError):
        inside = None
    hint = f" (expected {expected})" if expected else ""
    fix = f"set paths.data_dir=DIR or task.loader.{key}=PATH"
    if inside is not None:
        return ConfigError(f"{what} not found: {inside} under data dir {data_dir} (paths.data_dir, or "
                           f"${_DATA_ENV}){hint}; {fix}")
    return ConfigError(f"{what} not found: {path}{hint}; data is looked up under paths.data_dir (or ${_DATA_ENV}): {fix}")


def _describe(exc: BaseException) -> str:
    if isinstance(exc, KeyError):
        return f"missing key {exc.args[0]!r}" if exc.args else "missing key"
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


@contextmanager
def malformed_entry(where: str) -> Iterator[None]:
    """Turn the KeyError / TypeError / ValueError / AttributeError / IndexError raised while one
    annotation entry is parsed into one ConfigError line ``"<where>: malformed entry (...)"``.
    ``where`` names the file and the entry (index and id when known)."""
    try:
        yield
    except ConfigError:
        raise
    except (KeyError, TypeError, ValueError, AttributeError, IndexError) as exc:
        raise ConfigError(f"{where}: malformed entry ({_describe(exc)})") from None


def entry_field(entry: Any, key: str, types: type | tuple[type, ...], where: str, *, optional: bool = False) -> Any:
    """``entry[key]`` checked to be one of ``types`` (``bool`` is never accepted as an ``int``);
    None when absent and ``optional``. ConfigError ``"<where>: 'key' is missing"`` / ``"... must be
    int, got str '12a'"`` otherwise."""
    if not isinstance(entry, dict):
        raise ConfigError(f"{where}: expected a JSON object, got {type(entry).__name__}")
    if key not in entry or entry[key] is None:
        if optional:
            return None
        raise ConfigError(f"{where}: {key!r} is missing")
    value = entry[key]
    types = types if isinstance(types, tuple) else (types,)
    if (isinstance(value, bool) and bool not in types) or not isinstance(value, types):
        names = " or ".join(t.__name__ for t in types)
        raise ConfigError(f"{where}: {key!r} must be {names}, got {type(value).__name__} {value!r:.60}")
    return value


def entry_id(entry: Any, key: str, where: str) -> int:
    """An integer id (``question_id``, ``image_id``, ``cocoid``): an int, or a string of digits
    (some copies store ids as strings); anything else is a ConfigError naming the entry."""
    value = entry_field(entry, key, (int, str), where)
    if isinstance(value, str):
        if not value.strip().lstrip("-").isdigit():
            raise ConfigError(f"{where}: {key!r} must be an integer id, got {value!r:.60}")
        return int(value)
    return value


def text_list(value: Any, where: str, *, field: str, key: str, bad_item: str, nonempty: bool) -> list[str]:
    """The strings of an annotation list whose items are strings or objects holding one under
    ``key`` (Karpathy ``sentences[].raw``, VQA ``answers[].answer``). ConfigError
    ``"<where>: 'field' must be a [non-empty ]list"`` or ``"<where>: <bad_item>: <item>"``;
    an absent (None) list is ``[]`` unless ``nonempty``."""
    if value is None and not nonempty:
        return []
    if not isinstance(value, list) or (nonempty and not value):
        raise ConfigError(f"{where}: {field!r} must be a {'non-empty ' if nonempty else ''}list")
    out = []
    for item in value:
        text = item.get(key) if isinstance(item, dict) else item
        if not isinstance(text, str):
            raise ConfigError(f"{where}: {bad_item}: {item!r:.80}")
        out.append(text)
    return out
