"""Import speed and memory of `sahmr import rich` at RICH-test size (3,116 frames) and of `sahmr import prox`.

    python benchmarks/bench_import.py [--frames 3116] [--prox-frames 300] [--out reports/bench/import.json]

The licensed data is not available here, so the inputs are the original-format fixture
(tests/helpers/original_fixture.py) scaled up: its 4 RICH test frames copied under new img_keys (real file sizes:
224² PNG crops, 10,475-vertex SMPL-X PLYs, packbits contact, metas in one test3116.npy) until the split holds
`--frames` frames, and its PROX frames (1920x1080 JPEGs, flipped and re-encoded as PNG on import) likewise.
Each import runs as its own process (`sahmr import ...`): its time and its peak RSS (the process's own
getrusage) are reported, per 1,000 frames too. The input files were just written, so they are
in the page cache: a first read from disk adds the disk's time.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from sahmr.body.model_file import load_body_model_file
from tests.helpers.original_fixture import write_prox_fixture, write_rich_fixture


def _open_model() -> Path:
    from tests.conftest import _builder_digest

    path = ROOT / ".cache" / "test-models" / f"sahmr-open-{_builder_digest()}.npz"
    if not path.is_file():
        from sahmr.body.open_model import build_and_save

        build_and_save(path)
    return path


def scale_rich_test(src: Path, n: int) -> None:
    """Replicate the fixture's test frames (files and metas) until test3116.npy lists n frames."""
    sup = src / "sahmr_support" / "test_split"
    meta_path = sup / "meta" / "test3116.npy"
    base = list(np.load(meta_path, allow_pickle=True))
    metas = []
    for i in range(n):
        m = dict(base[i % len(base)])
        if i >= len(base):
            old = m["img_key"]
            key = f"{old}_r{i:05d}"
            shutil.copyfile(sup / "image" / f"{old}.png", sup / "image" / f"{key}.png")
            shutil.copyfile(sup / "gt_smplx_mesh" / f"{old}.ply", sup / "gt_smplx_mesh" / f"{key}.ply")
            rel = m["contact_file"].split("test_contact/", 1)[1]
            new_rel = rel.replace(".npy", f"_r{i:05d}.npy")
            shutil.copyfile(sup / "contact" / rel, sup / "contact" / new_rel)
            m.update(img_key=key, contact_file=m["contact_file"].replace(rel, new_rel))
        metas.append(m)
    arr = np.empty(len(metas), dtype=object)
    arr[:] = metas
    np.save(meta_path, arr, allow_pickle=True)


def scale_prox(src: Path, n: int) -> None:
    import pickle

    sup = src / "sahmr_support"
    metas = pickle.loads((sup / "meta" / "mosh_mesh_test.pkl").read_bytes())
    boxes = pickle.loads((sup / "img2gtbbx" / "mosh_mesh.pkl").read_bytes())
    out = []
    for i in range(n):
        m = dict(metas[i % len(metas)])
        if i >= len(metas):
            img_rel = m["img_file"].split("recordings/", 1)[1]
            body_rel = m["body_file"].split("mosh/", 1)[1]
            new_img = img_rel.replace(".jpg", f"_r{i:05d}.jpg")
            new_body = body_rel.replace("/000.ply", f"_r{i:05d}/000.ply")
            shutil.copyfile(sup / "image" / img_rel, sup / "image" / new_img)
            (sup / "gt_mosh_mesh" / new_body).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(sup / "gt_mosh_mesh" / body_rel, sup / "gt_mosh_mesh" / new_body)
            key = f"{m['img_key']}_r{i:05d}"
            boxes[key] = boxes[m["img_key"]]
            m.update(img_key=key, img_file=m["img_file"].replace(img_rel, new_img), body_file=m["body_file"].replace(body_rel, new_body))
        out.append(m)
    (sup / "meta" / "mosh_mesh_test.pkl").write_bytes(pickle.dumps(out, protocol=2))
    (sup / "img2gtbbx" / "mosh_mesh.pkl").write_bytes(pickle.dumps(boxes, protocol=2))


_CHILD = (
    "import json, resource, sys, time; from sahmr.cli import main; t = time.perf_counter(); rc = main(sys.argv[1:]); "
    "print(json.dumps({'rc': rc, 'seconds': time.perf_counter() - t, "
    "'peak_rss_mb': resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))"
)


def timed(argv: list[str]) -> tuple[float, float]:
    """(seconds, peak RSS MB) of one `sahmr` process (its own getrusage; includes the Python start-up)."""
    run = subprocess.run([sys.executable, "-c", _CHILD, *argv], check=True, cwd=ROOT, capture_output=True, text=True)
    r = json.loads(run.stdout.strip().splitlines()[-1])
    if r["rc"] != 0:
        raise RuntimeError(f"sahmr {' '.join(argv)} failed: {run.stderr}")
    return r["seconds"], r["peak_rss_mb"]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--frames", type=int, default=3116)
    ap.add_argument("--prox-frames", type=int, default=300)
    ap.add_argument("--out", default=str(ROOT / "reports" / "bench" / "import.json"))
    args = ap.parse_args()
    body = _open_model()
    result = {"machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version()}}
    with tempfile.TemporaryDirectory(prefix="bench_import_") as tmp:
        tmp = Path(tmp)
        rich = write_rich_fixture(tmp / "RICH", load_body_model_file(body).arrays)
        t = time.perf_counter()
        scale_rich_test(tmp / "RICH", args.frames)
        print(f"RICH test input: {args.frames} frames written in {time.perf_counter() - t:.1f} s")
        wall, rss = timed(
            [
                "import",
                "rich",
                str(tmp / "RICH"),
                "--out",
                str(tmp / "rich_ds"),
                "--splits",
                "test",
                "--body-model",
                str(body),
                "--smplx2smplh",
                str(rich.deftrafo_path),
                "--quiet",
            ]
        )
        size = sum(p.stat().st_size for p in (tmp / "rich_ds").rglob("*") if p.is_file())
        result["rich_test"] = {
            "frames": args.frames,
            "seconds": round(wall, 1),
            "seconds_per_1000_frames": round(1000 * wall / args.frames, 1),
            "peak_rss_mb": round(rss),
            "output_mb": round(size / 2**20),
        }
        print(json.dumps(result["rich_test"]))
        shutil.rmtree(tmp / "rich_ds")
        write_prox_fixture(tmp / "PROX")
        scale_prox(tmp / "PROX", args.prox_frames)
        wall, rss = timed(
            [
                "import",
                "prox",
                str(tmp / "PROX"),
                "--out",
                str(tmp / "prox_ds"),
                "--body-model",
                str(body),
                "--smplx2smplh",
                str(rich.deftrafo_path),
                "--quiet",
            ]
        )
        result["prox"] = {
            "frames": args.prox_frames,
            "seconds": round(wall, 1),
            "seconds_per_1000_frames": round(1000 * wall / args.prox_frames, 1),
            "peak_rss_mb": round(rss),
        }
        print(json.dumps(result["prox"]))
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
