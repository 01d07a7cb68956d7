"""Wall time of `make repro` from a fresh clone (install included), stage by stage: the one-hour rule's measurement.

Clones the repository's HEAD into a new folder, runs `/usr/bin/time -v make repro` there with every output line
stamped with the seconds since the start, and writes reports/bench/make_repro_fresh.json: the total, the
install (everything before DVC's first stage), each stage's wall time (from its "Running stage" line to the
next one), the peak memory, and the commit. Run nothing else meanwhile (2 cores: a second process slows both).
The clone is kept (its workspace holds the run's outputs); delete it yourself.

    .venv/bin/python benchmarks/fresh_repro.py [--clone /tmp/fresh] [--out reports/bench/make_repro_fresh.json]
    .venv/bin/python benchmarks/fresh_repro.py --from-log /tmp/fresh_run.log --commit a343d4e   # parse a run

A log for --from-log has lines `<seconds> <text>` (the stamping this script does), "Running stage 'name':"
among them, and /usr/bin/time -v's report at the end.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
STAGE = re.compile(r"Running stage '([^']+)'")
STAMPED = re.compile(r"^(\d+) (.*)$")


def parse_log(lines: list[str]) -> dict:
    """Per-stage wall seconds from stamped lines. A stage runs from its "Running stage" line to the next stage's
    (the last one to the last stamped line); 'install' is everything before the first stage (venv, pip, body-model
    download checks). Returns {"wall_s", "install_s", "stages": {name: s}, "peak_rss_mb", "exit_status"}."""
    starts: list[tuple[str, int]] = []
    last = 0
    peak = status = None
    for raw in lines:
        for piece in raw.rstrip("\n").split("\r"):  # tqdm bars arrive as carriage-return updates on one line
            m = STAMPED.match(piece)
            if not m:
                continue
            t, text = int(m.group(1)), m.group(2)
            last = max(last, t)
            s = STAGE.search(text)
            if s:
                starts.append((s.group(1), t))
            if "Maximum resident set size" in text:
                peak = int(text.rsplit(":", 1)[1]) / 1024
            if "Exit status:" in text:
                status = int(text.rsplit(":", 1)[1])
    if not starts:
        raise ValueError("no \"Running stage '...'\" line in the log: not a stamped `make repro` log")
    bounds = [t for _, t in starts[1:]] + [last]
    stages = {name: end - t for (name, t), end in zip(starts, bounds, strict=True)}
    return {"wall_s": last, "install_s": starts[0][1], "stages": stages, "peak_rss_mb": peak, "exit_status": status}


def run_fresh(clone: Path, log: Path) -> None:
    if clone.exists():
        sys.exit(f"fresh_repro: {clone} exists; pass another --clone (this script never deletes what it did not write)")
    subprocess.run(["git", "clone", "-q", str(ROOT), str(clone)], check=True)
    start = time.monotonic()
    with (
        log.open("w") as out,
        subprocess.Popen(
            ["/usr/bin/time", "-v", "make", "repro"], cwd=clone, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1
        ) as p,
    ):
        for line in p.stdout:
            out.write(f"{int(time.monotonic() - start)} {line}")
            out.flush()
    if p.returncode:
        sys.exit(f"fresh_repro: make repro failed (exit {p.returncode}); see {log}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--clone", type=Path, default=Path("/tmp/sahmr-fresh-repro"), help="new folder for the clone")
    ap.add_argument("--from-log", type=Path, help="parse this stamped log instead of running")
    ap.add_argument("--commit", help="the commit the log's run was made from (with --from-log)")
    ap.add_argument("--note", default="", help="free text stored with the result")
    ap.add_argument("--out", type=Path, default=ROOT / "reports/bench/make_repro_fresh.json")
    args = ap.parse_args()
    if args.from_log:
        log, commit = args.from_log, args.commit
        if not commit:
            ap.error("--from-log needs --commit (the commit the run was made from)")
    else:
        log = args.clone.with_name(args.clone.name + ".log")
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True, check=True).stdout.strip()
        run_fresh(args.clone, log)
    result = parse_log(log.read_text(errors="replace").splitlines(keepends=True))
    record = {
        "benchmark": "make repro on a fresh clone (git clone; /usr/bin/time -v make repro): install + every dvc stage",
        "commit": commit,
        "date": time.strftime("%Y-%m-%d"),
        "wall_s": result["wall_s"],
        "wall_min": round(result["wall_s"] / 60, 1),
        "install_s": result["install_s"],
        "stages_s": result["stages"],
        "peak_rss_mb": None if result["peak_rss_mb"] is None else round(result["peak_rss_mb"]),
        "rc": result["exit_status"],
        "machine": {"cpu_count": os.cpu_count(), "platform": platform.platform()},
        "note": args.note,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    tmp = args.out.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(record, indent=2) + "\n")
    tmp.replace(args.out)
    print(f"{record['wall_min']} min ({result['install_s']} s install); longest stages:")
    for name, s in sorted(result["stages"].items(), key=lambda kv: -kv[1])[:6]:
        print(f"  {name:28s} {s / 60:5.1f} min")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
