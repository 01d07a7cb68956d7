"""`sahmr data upgrade`: a format-1 dataset (as the previous sahmr wrote it) becomes the same dataset a
fresh format-2 write gives — same arrays, manifest and content hash — without deleting anything."""

import hashlib
import json
import shutil

import numpy as np
import pytest

from sahmr.cli import main
from sahmr.data.format import FORMAT_VERSION, DatasetFormatError, open_dataset, upgrade_dataset
from sahmr.data.format.validate import validate_dataset
from tests.helpers.tiny_dataset import make_tiny_dataset


def as_format_1(root):
    """Rewrite a fresh format-2 dataset the way sahmr with format_version 1 wrote it: the person box under
    ``bbox_xyxy.npy`` and a content hash computed by hand over the v1 paths (independent of the kit)."""
    meta = json.loads((root / "dataset.json").read_text())
    manifest = json.loads((root / "manifest.json").read_text())
    for split, arrays in meta["arrays"].items():
        (root / "frames" / split / "person_box_xyxy.npy").rename(root / "frames" / split / "bbox_xyxy.npy")
        arrays["bbox_xyxy"] = arrays.pop("person_box_xyxy")
        manifest[f"frames/{split}/bbox_xyxy.npy"] = manifest.pop(f"frames/{split}/person_box_xyxy.npy")
    lines = "".join(f"{manifest[p]}  {p}\n" for p in sorted(manifest))
    meta["content_hash"] = hashlib.sha256(lines.encode()).hexdigest()
    meta["format_version"] = 1
    (root / "manifest.json").write_text(json.dumps(manifest))
    (root / "dataset.json").write_text(json.dumps(meta))
    return meta


@pytest.fixture(scope="module")
def fresh(tmp_path_factory):
    root = tmp_path_factory.mktemp("upgrade") / "v2"
    make_tiny_dataset(root)
    return root


@pytest.fixture
def v1(fresh, tmp_path):
    root = tmp_path / "v1"
    shutil.copytree(fresh, root)
    as_format_1(root)
    return root


def test_v1_is_refused_with_the_upgrade_command(v1):
    with pytest.raises(DatasetFormatError, match=r"format_version 1 .*sahmr data upgrade"):
        open_dataset(v1)
    problems = validate_dataset(v1)
    assert [p.field for p in problems if p.severity == "error"] == ["format_version"]
    assert "sahmr data upgrade" in problems[0].message


def test_upgrade_gives_what_a_fresh_write_gives(fresh, v1):
    old_hash = json.loads((v1 / "dataset.json").read_text())["content_hash"]
    done = upgrade_dataset(v1)
    assert len(done) == 3 and "frames/train/bbox_xyxy.npy -> frames/train/person_box_xyxy.npy" in done[0]
    new, ref = (json.loads((r / "dataset.json").read_text()) for r in (v1, fresh))
    assert new == ref and new["content_hash"] != old_hash
    assert json.loads((v1 / "manifest.json").read_text()) == json.loads((fresh / "manifest.json").read_text())
    a, b = open_dataset(v1), open_dataset(fresh)
    for split in ("train", "val"):
        np.testing.assert_array_equal(a.split(split)["person_box_xyxy"], b.split(split)["person_box_xyxy"])
        assert (v1 / "frames" / split / "bbox_xyxy.npy").is_file()  # left in place: the kit deletes nothing
    assert [p for p in validate_dataset(v1) if p.severity == "error"] == []  # content hash re-verified from bytes
    assert upgrade_dataset(v1) == []  # idempotent


def test_cli_upgrade_and_bad_inputs(v1, tmp_path, capsys):
    assert main(["data", "upgrade", str(v1)]) == 0
    assert "person_box_xyxy" in capsys.readouterr().out
    assert main(["data", "upgrade", str(v1)]) == 0
    assert f"already format_version {FORMAT_VERSION}" in capsys.readouterr().out
    meta = json.loads((v1 / "dataset.json").read_text())
    meta["format_version"] = 99
    (v1 / "dataset.json").write_text(json.dumps(meta))
    with pytest.raises(DatasetFormatError, match="format_version 99 cannot be upgraded"):
        upgrade_dataset(v1)
    with pytest.raises(FileNotFoundError, match="not a sahmr dataset"):
        upgrade_dataset(tmp_path / "nothing")


def test_missing_array_is_named_and_nothing_changes(v1):
    (v1 / "frames" / "val" / "bbox_xyxy.npy").unlink()
    before = (v1 / "dataset.json").read_text()
    with pytest.raises(DatasetFormatError, match=r"frames/val/bbox_xyxy.npy: listed in dataset.json but missing"):
        upgrade_dataset(v1)
    assert (v1 / "dataset.json").read_text() == before
