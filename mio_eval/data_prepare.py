"""``mio-eval data prepare TASK --from DIR``: lay downloaded copies out where a task looks for them.

The task's own config says where it reads (every loader path under ``paths.data_dir``, plus the
image / video folders its release format names: :data:`RELEASE_FOLDERS`). For each such path
that is absent, the command looks in ``DIR`` (the downloads: official release archives, unpacked
folders, Hugging Face snapshots or hub caches) for an entry of the same name, or for a member of a
``.zip`` / ``.tar(.gz)`` archive of that name, and links it into place (``--copy`` copies;
archive members are extracted). Then it checks:

* digests where they are published: a Hugging Face cache file is a symlink to
  ``blobs/<sha256>`` (LFS files are named by the SHA-256 of their content), and a ``SHA256SUMS`` /
  ``*.sha256`` / ``MD5SUMS`` / ``*.md5`` file in ``DIR`` lists release files; a mismatch is an error;
* what is still missing, with ``mio-eval validate``'s own checks (files present and parsable,
  sample count against the official split size, every referenced media file).

Prints one line per action and per problem. Exit 0 when the task's data is complete, 1 when
something is missing or a digest differs, 2 on unusable input.
"""

from __future__ import annotations

import argparse
import hashlib
import re
import shutil
import sys
import tarfile
import zipfile
from pathlib import Path
from typing import Any, Iterator, Sequence

__all__ = ["main", "prepare", "RELEASE_FOLDERS"]

# Folders a release format names inside a loader root (not themselves loader options):
# Karpathy's ``filepath`` values, and the image folders of the VQA questions' COCO split.
RELEASE_FOLDERS = {
    "caption_coco_karpathy": ["coco/val2014"], "t2i_coco_karpathy": ["coco/val2014"],
    "vqav2_val": ["coco/val2014"], "okvqa_val": ["coco/val2014"], "vqav2_testdev": ["coco/test2015"],
}
_ARCHIVES = (".zip", ".tar", ".tar.gz", ".tgz")
_SUMS = re.compile(r"^([0-9a-fA-F]{32}|[0-9a-fA-F]{64})\s+\*?(.+)$")


def _targets(cfg: Any, data_dir: Path, task: str) -> list[Path]:
    """Every path the task's config reads under ``data_dir`` (deepest first), plus release folders."""
    from omegaconf import OmegaConf

    values: list[str] = []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            for v in node.values():
                walk(v)
        elif isinstance(node, list):
            for v in node:
                walk(v)
        elif isinstance(node, str):
            values.append(node)

    walk(OmegaConf.to_container(cfg.task, resolve=True))
    root = data_dir.resolve()
    found = {Path(v).resolve() for v in values if Path(v).is_absolute() or v.startswith(str(data_dir))}
    found = {p for p in found if p.is_relative_to(root) and p != root}
    found |= {root / rel for rel in RELEASE_FOLDERS.get(task, [])}
    return sorted(found, key=lambda p: (-len(p.parts), str(p)))


def _candidates(source: Path, name: str) -> Iterator[Path]:
    yield from sorted(source.rglob(name), key=lambda p: (len(p.parts), str(p)))


def _archive_members(source: Path, name: str) -> Iterator[tuple[Path, str]]:
    for archive in sorted(p for p in source.rglob("*") if p.is_file() and p.name.endswith(_ARCHIVES)):
        try:
            names = zipfile.ZipFile(archive).namelist() if archive.suffix == ".zip" else tarfile.open(archive).getnames()
        except (zipfile.BadZipFile, tarfile.TarError, OSError):
            continue
        for member in names:
            parts = member.rstrip("/").split("/")
            if name in parts:
                yield archive, "/".join(parts[: parts.index(name) + 1])
                break


def _extract(archive: Path, member: str, target: Path) -> None:
    """Extract ``member`` (a file, or a folder and everything under it) of ``archive`` to ``target``,
    refusing members that would land outside it."""
    target.parent.mkdir(parents=True, exist_ok=True)
    prefix = member.rstrip("/")
    if archive.suffix == ".zip":
        with zipfile.ZipFile(archive) as zf:
            items = [(i.filename, i) for i in zf.infolist() if i.filename.rstrip("/") == prefix
                     or i.filename.startswith(prefix + "/")]
            for name, info in items:
                dest = (target / name[len(prefix):].lstrip("/")).resolve() if name.rstrip("/") != prefix else target
                if not dest.is_relative_to(target.resolve()) and dest != target:
                    raise ValueError(f"{archive.name}: member {name} leaves the target")
                if info.is_dir():
                    dest.mkdir(parents=True, exist_ok=True)
                else:
                    dest.parent.mkdir(parents=True, exist_ok=True)
                    with zf.open(info) as src, open(dest, "wb") as dst:
                        shutil.copyfileobj(src, dst)
        return
    with tarfile.open(archive) as tf:
        for info in tf.getmembers():
            if info.name.rstrip("/") != prefix and not info.name.startswith(prefix + "/"):
                continue
            dest = (target / info.name[len(prefix):].lstrip("/")).resolve() if info.name.rstrip("/") != prefix else target
            if not (dest == target or dest.is_relative_to(target.resolve())) or info.issym() or info.islnk():
                raise ValueError(f"{archive.name}: member {info.name} leaves the target or is a link")
            if info.isdir():
                dest.mkdir(parents=True, exist_ok=True)
            elif info.isfile():
                dest.parent.mkdir(parents=True, exist_ok=True)
                with tf.extractfile(info) as src, open(dest, "wb") as dst:
                    shutil.copyfileobj(src, dst)


def _digest(path: Path, algorithm: str) -> str:
    h = hashlib.new(algorithm)
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _published(source: Path) -> dict[str, str]:
    """File name -> published hex digest, from checksum files in ``source``."""
    sums: dict[str, str] = {}
    for f in source.rglob("*"):
        if f.is_file() and (f.name.upper() in ("SHA256SUMS", "MD5SUMS", "SHA256SUMS.TXT", "MD5SUMS.TXT")
                            or f.suffix.lower() in (".sha256", ".md5")):
            for line in f.read_text(encoding="utf-8", errors="replace").splitlines():
                m = _SUMS.match(line.strip())
                if m:
                    sums[Path(m.group(2).strip()).name] = m.group(1).lower()
    return sums


def _check(path: Path, published: dict[str, str]) -> tuple[str | None, str | None]:
    """(what was verified, the problem) for one placed file."""
    link = path.resolve()
    if path.is_symlink() or link != path:
        blob = link.name
        if link.parent.name == "blobs" and re.fullmatch(r"[0-9a-f]{64}", blob):
            got = _digest(link, "sha256")
            return (f"sha256 = HF cache blob {blob[:12]}", None) if got == blob else (
                None, f"{path.name}: sha256 {got[:12]}... differs from its HF cache blob name {blob[:12]}...")
    want = published.get(path.name)
    if want and path.is_file():
        got = _digest(path, "md5" if len(want) == 32 else "sha256")
        return (f"{'md5' if len(want) == 32 else 'sha256'} as published", None) if got == want else (
            None, f"{path.name}: digest {got[:12]}... differs from the published {want[:12]}...")
    return None, None


def prepare(task: str, source: Path, *, data_dir: Path, copy: bool = False, overrides: Sequence[str] = (),
            out=print) -> int:
    """Lay ``source``'s downloads out for ``task`` under ``data_dir``; returns the exit code."""
    from mio_eval.api import compose

    cfg = compose([f"task={task}", "model=dummy", f"paths.data_dir={data_dir}", *overrides])
    published = _published(source)
    problems = 0
    for target in _targets(cfg, data_dir, task):
        if target.exists():
            out(f"present  {target}")
            placed = target
        else:
            match = next((c for c in _candidates(source, target.name) if c.is_dir() == (not target.suffix)
                          or c.is_file() == bool(target.suffix)), None)
            placed = None
            if match is not None:
                target.parent.mkdir(parents=True, exist_ok=True)
                if copy:
                    (shutil.copytree if match.is_dir() else shutil.copyfile)(match, target)
                else:
                    target.symlink_to(match.absolute())   # keep HF cache symlinks checkable
                out(f"{'copied' if copy else 'linked'}   {target} <- {match}")
                placed = target
            else:
                member = next(_archive_members(source, target.name), None)
                if member is not None:
                    try:
                        _extract(member[0], member[1], target)
                    except ValueError as exc:
                        out(f"refused  {exc}")
                        problems += 1
                        continue
                    out(f"extracted {target} <- {member[0].name}:{member[1]}")
                    placed = target
            if placed is None:
                out(f"missing  {target} (no {target.name} in {source} or its archives)")
                problems += 1
                continue
        files = [placed] if placed.is_file() else []
        for f in files:
            ok, problem = _check(f, published)
            if problem:
                out(f"digest   {problem}")
                problems += 1
            elif ok:
                out(f"verified {f.name}: {ok}")
    from mio_eval.validate import main as validate_main

    code = validate_main([f"task={task}", "model=dummy", f"paths.data_dir={data_dir}", *overrides])
    return 1 if problems or code else 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="mio-eval data", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    prep = sub.add_parser("prepare", help="lay downloaded copies out where TASK looks for them")
    prep.add_argument("task")
    prep.add_argument("--from", dest="source", required=True, help="folder holding the downloads")
    prep.add_argument("--data-dir", default=None, help="paths.data_dir (default: $MIO_EVAL_DATA or data)")
    prep.add_argument("--copy", action="store_true", help="copy instead of symlinking")
    prep.add_argument("overrides", nargs="*", help="extra Hydra overrides (task.loader.split=...)")
    args = parser.parse_args(list(sys.argv[1:] if argv is None else argv))
    from mio_eval.errors import ConfigError

    source = Path(args.source)
    if not source.is_dir():
        print(f"mio-eval: error: --from {source}: not a folder", file=sys.stderr)
        return 2
    import os

    data_dir = Path(args.data_dir or os.environ.get("MIO_EVAL_DATA", "data")).absolute()
    try:
        return prepare(args.task, source, data_dir=data_dir, copy=args.copy, overrides=args.overrides)
    except ConfigError as exc:
        print(f"mio-eval: error: {exc}", file=sys.stderr)
        return 2
