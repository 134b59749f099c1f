"""Where the reference scripts get the original code: a git checkout or bare mirror of the public
repository, read at an exact commit (``git show``/``git archive``). Nothing fetched is committed.

``source(repo, commit, cache)`` returns a git directory holding ``commit``: ``$REF_<OWNER>_<NAME>``
(a local clone or bare mirror) if set, else a bare clone of ``https://github.com/<repo>`` under
``cache`` (made once).
"""

from __future__ import annotations

import argparse
import io
import os
import re
import subprocess
import tarfile
import tempfile
from pathlib import Path

__all__ = ["arguments", "source", "show", "extract"]


def arguments(doc: str, argv: list[str] | None = None, *, checkout: bool = False) -> argparse.Namespace:
    """The reference scripts' command line: ``--cache DIR`` (where mirrors are cloned) and, with
    ``checkout``, ``--checkout DIR`` (a checkout of the reference repository)."""
    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    if checkout:
        parser.add_argument("--checkout", type=Path, help="a checkout of the reference repository")
    parser.add_argument("--cache", type=Path, default=Path(tempfile.gettempdir()) / "mio-eval-reference")
    return parser.parse_args(argv)


def _env_name(repo: str) -> str:
    return "REF_" + re.sub(r"[^A-Za-z0-9]", "_", repo).upper()


def source(repo: str, commit: str, *, cache: Path) -> Path:
    """A git dir of ``repo`` that has ``commit`` (see the module docstring)."""
    local = os.environ.get(_env_name(repo))
    if local:
        git_dir = Path(local)
    else:
        git_dir = cache / (repo.replace("/", "+") + ".git")
        if not git_dir.exists():
            cache.mkdir(parents=True, exist_ok=True)
            subprocess.run(["git", "clone", "--bare", "--quiet", f"https://github.com/{repo}", str(git_dir)], check=True)
    subprocess.run(["git", "--git-dir", str(git_dir), "cat-file", "-e", f"{commit}^{{commit}}"], check=True)
    return git_dir


def show(git_dir: Path, commit: str, path: str) -> str:
    """The text of ``path`` at ``commit``."""
    return subprocess.run(["git", "--git-dir", str(git_dir), "show", f"{commit}:{path}"],
                          check=True, capture_output=True, text=True).stdout


def extract(git_dir: Path, commit: str, paths: list[str], dest: Path) -> Path:
    """``git archive`` of ``paths`` at ``commit`` unpacked under ``dest``."""
    blob = subprocess.run(["git", "--git-dir", str(git_dir), "archive", commit, *paths],
                          check=True, capture_output=True).stdout
    dest.mkdir(parents=True, exist_ok=True)
    with tarfile.open(fileobj=io.BytesIO(blob)) as tar:
        tar.extractall(dest, filter="data")
    return dest
