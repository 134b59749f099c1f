"""Local HF dataset copies read through ``datasets``: Hub-layout parquet shards and save_to_disk
folders, lazily (a sequence that streams rows), media undecoded until a model reads them."""

from __future__ import annotations

import io

import pytest
from PIL import Image as PILImage

from mio_eval.errors import ConfigError
from mio_eval.tasks.loaders.hf import HFRows, materialize, read_hf_table


def _png(level: int) -> bytes:
    buf = io.BytesIO()
    PILImage.new("RGB", (4, 4), (level, level, level)).save(buf, "PNG")
    return buf.getvalue()


@pytest.fixture(scope="module")
def hub_copy(tmp_path_factory):
    """A dataset written by ``datasets`` itself (Image feature in the parquet metadata), laid out
    as a Hub snapshot: data/<split>-00000-of-00001.parquet, plus a dev split."""
    import datasets

    root = tmp_path_factory.mktemp("hub")
    features = datasets.Features({"question_id": datasets.Value("int64"), "image": datasets.Image(),
                                  "question": datasets.Value("string")})
    for split, n in (("test", 5), ("dev", 2)):
        ds = datasets.Dataset.from_dict({"question_id": list(range(n)), "image": [{"bytes": _png(10 * i), "path": None}
                                                                                   for i in range(n)],
                                         "question": [f"{split} q{i}" for i in range(n)]}, features=features)
        (root / "data").mkdir(exist_ok=True)
        ds.to_parquet(str(root / "data" / f"{split}-00000-of-00001.parquet"))
        ds.save_to_disk(str(root / "saved" / split))
    datasets.DatasetDict({"test": datasets.load_from_disk(str(root / "saved" / "test"))}).save_to_disk(str(root / "dict"))
    return root


def test_hub_parquet_is_streamed_lazily_and_undecoded(hub_copy, tmp_path):
    rows = read_hf_table(hub_copy, "test", undecoded=["image"])
    assert isinstance(rows, HFRows) and len(rows) == 5 and bool(rows)
    head = rows[:2]
    assert isinstance(head, HFRows) and len(head) == 2 and [r["question_id"] for r in head] == [0, 1]
    first = rows[0]
    assert set(first["image"]) == {"bytes", "path"} and first["image"]["bytes"] == _png(0)   # not a PIL image
    assert rows[-1]["question"] == "test q4" and [r["question_id"] for r in rows[1:5:2]] == [1, 3]
    path = materialize(first["image"], base=hub_copy, cache_dir=tmp_path)
    assert PILImage.open(path).getpixel((0, 0)) == (0, 0, 0)
    # "dev" is the Hub's synonym of "validation": only the split named is read.
    assert len(read_hf_table(hub_copy, "dev")) == 2
    with pytest.raises(ConfigError, match="no parquet shards for split 'validation'"):
        read_hf_table(hub_copy, "validation")
    with pytest.raises(ConfigError, match=r"no column\(s\) answer"):
        read_hf_table(hub_copy, "test", columns=["question", "answer"])


def test_save_to_disk_copies(hub_copy):
    rows = read_hf_table(hub_copy / "dict", "test", columns=["question_id", "image"], undecoded=["image"])
    assert len(rows) == 5 and set(rows[3]) == {"question_id", "image"} and rows[3]["image"]["bytes"] == _png(30)
    assert [r["question_id"] for r in rows[:3]] == [0, 1, 2]
    with pytest.raises(ConfigError, match="split 'train' not in"):
        read_hf_table(hub_copy / "dict", "train")
    assert len(read_hf_table(hub_copy / "saved" / "dev", "dev")) == 2
