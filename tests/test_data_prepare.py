"""``mio-eval data prepare``: downloads (release archives, a Hugging Face cache) laid out where a
task reads, digests checked where published, what is missing reported."""

from __future__ import annotations

import hashlib
import zipfile

from mio_eval.cli import main as cli_main
from mio_eval.data_prepare import main
from test_image_tasks import data  # noqa: F401 - fixture


def _zip(path, members):
    with zipfile.ZipFile(path, "w") as zf:
        for name, src in members:
            zf.write(src, name)


def test_prepare_from_release_archives(data, tmp_path, capsys):  # noqa: F811
    dl = tmp_path / "downloads"
    dl.mkdir()
    karpathy = data / "coco" / "dataset_coco.json"
    _zip(dl / "caption_datasets.zip", [("dataset_coco.json", karpathy)])   # Karpathy's release archive
    _zip(dl / "val2014.zip", [(f"val2014/{p.name}", p) for p in sorted((data / "coco" / "val2014").iterdir())])
    (dl / "SHA256SUMS").write_text(f"{hashlib.sha256(karpathy.read_bytes()).hexdigest()}  dataset_coco.json\n")
    target = tmp_path / "data"
    code = main(["prepare", "caption_coco_karpathy", "--from", str(dl), "--data-dir", str(target)])
    out = capsys.readouterr()
    # Everything is laid out; the one remaining problem is the fixture's size (3 of 5000 images).
    assert code == 1 and "missing" not in out.out
    assert out.err.strip() == "mio-eval validate: data: 3 samples found, the official split has 5000"
    assert (target / "coco" / "dataset_coco.json").read_bytes() == karpathy.read_bytes()
    assert len(list((target / "coco" / "val2014").glob("*.jpg"))) == len(list((data / "coco" / "val2014").iterdir()))
    assert "verified dataset_coco.json: sha256 as published" in out.out
    # A second run finds everything in place.
    main(["prepare", "caption_coco_karpathy", "--from", str(dl), "--data-dir", str(target)])
    again = capsys.readouterr().out
    assert again.count("present") == 3 and "extracted" not in again


def test_prepare_reports_missing_and_bad_digests(data, tmp_path, capsys):  # noqa: F811
    dl = tmp_path / "hub"
    blobs = dl / "datasets--karpathy" / "blobs"
    blobs.mkdir(parents=True)
    wrong = blobs / ("0" * 64)   # an HF cache blob whose content is not what its name says
    wrong.write_bytes((data / "coco" / "dataset_coco.json").read_bytes())
    snap = dl / "datasets--karpathy" / "snapshots" / "abc"
    snap.mkdir(parents=True)
    (snap / "dataset_coco.json").symlink_to(wrong)
    code = main(["prepare", "caption_coco_karpathy", "--from", str(dl), "--data-dir", str(tmp_path / "data")])
    out = capsys.readouterr()
    assert code == 1
    assert "differs from its HF cache blob name 000000000000" in out.out
    assert "missing" in out.out and "val2014" in out.out
    good = blobs / hashlib.sha256(wrong.read_bytes()).hexdigest()
    wrong.rename(good)
    (snap / "dataset_coco.json").unlink()
    (snap / "dataset_coco.json").symlink_to(good)
    (tmp_path / "data" / "coco" / "dataset_coco.json").unlink()
    main(["prepare", "caption_coco_karpathy", "--from", str(dl), "--data-dir", str(tmp_path / "data")])
    assert "verified dataset_coco.json: sha256 = HF cache blob" in capsys.readouterr().out
    assert main(["prepare", "caption_coco_karpathy", "--from", str(tmp_path / "nope")]) == 2
    try:
        cli_main(["data", "prepare", "no_such_task", "--from", str(dl)])
    except SystemExit as exc:
        assert exc.code == 2
