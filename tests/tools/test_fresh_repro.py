"""benchmarks/fresh_repro.py: per-stage times from a stamped `make repro` log (hand-made log, hand values)."""

import pytest

from tests.helpers.scripts import load_script

LOG = [
    "0 python3.11 -m venv .venv\n",
    "95 wrote models/sahmr-open.npz\n",
    "100 Running stage 'build_body_model':\n",
    "165 Running stage 'synth':\n",
    "170 synth:  10%|#         | 1/10\r synth:  50%|#####     | 5/10\r synth: 100%|##########| 10/10\n",
    "725 Running stage 'train_rcnet':\n",
    "1500 Updating lock file 'dvc.lock'\n",
    "1510 \tMaximum resident set size (kbytes): 3072000\n",
    "1510 \tExit status: 0\n",
    "END 1510 s rc=0\n",  # not stamped: ignored
]


def test_stage_times_install_total_and_memory():
    r = load_script("benchmarks/fresh_repro.py").parse_log(LOG)
    assert r["install_s"] == 100
    assert r["stages"] == {"build_body_model": 65, "synth": 560, "train_rcnet": 785}
    assert r["wall_s"] == 1510 and sum(r["stages"].values()) + r["install_s"] == r["wall_s"]
    assert r["peak_rss_mb"] == 3000 and r["exit_status"] == 0


def test_a_log_without_stages_is_refused():
    with pytest.raises(ValueError, match="Running stage"):
        load_script("benchmarks/fresh_repro.py").parse_log(["0 pip install\n", "10 done\n"])
