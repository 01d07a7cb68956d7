"""Before a real-data pipeline runs: is every licensed file where its params.yaml says? (`make repro-rich` etc.)

    python tools/check_real_data.py rich|prox|rich-train

Prints one line per missing file or folder (what it is, where it comes from) and exits 1 when anything is
missing, so the pipeline stops at once instead of failing deep inside a stage. Reads only the params.
"""

from __future__ import annotations

import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]

SMPL = "the SMPL neutral model (SMPL website, 'basicModel_neutral_lbs_10_207_0_v1.0.0.pkl')"
ASSETS = "the original SA-HMR companion files J_regressor_h36m_correct.npy, mesh_downsampling.npz, seg_part_info.npy"
DEFTRAFO = "smplx2smplh_deftrafo_setup.pkl from the SMPL-X website's model-transfer download"


def needs(target: str, p: dict) -> list[tuple[str, str]]:
    """[(path, what)] that `target` needs, from the pipeline's params."""
    if target == "prox":
        x = p["prox"]
        return [
            (f"{x['root']}/sahmr_support", "PROX quantitative's sahmr_support package (from the SA-HMR authors)"),
            (x["smpl_pkl"], SMPL),
            (x["assets"], ASSETS),
            (x["smplx2smplh"], DEFTRAFO),
            (x["checkpoint"], "the released sahmr_prox_e30.pth (SA-HMR release)"),
        ]
    x = p["rich"]
    common = [
        (f"{x['root']}/sahmr_support/scene_info", "RICH's sahmr_support package (from the SA-HMR authors)"),
        (x["smpl_pkl"], SMPL),
        (x["assets"], ASSETS),
    ]
    if target == "rich":
        return common + [
            (f"{x['root']}/sahmr_support/test_split", "RICH's sahmr_support test split"),
            (x["smplx2smplh"], DEFTRAFO),
            (x["checkpoint"], "the released sahmr_rich_e30.pth (SA-HMR release)"),
        ]
    return common + [
        (f"{x['root']}/sahmr_support/train_split", "RICH's sahmr_support train split"),
        (f"{x['root']}/sahmr_support/val_split", "RICH's sahmr_support val split"),
        (f"{x['root']}/images_ds4", "RICH images downsampled x4 (images_ds4/{train,val}; RICH website + the authors' script)"),
        (f"{x['root']}/bodies", "RICH SMPL-H fits (bodies/{train,val}; RICH website)"),
        (x["smplh_male_pkl"], "SMPL-H male model (MANO/SMPL-H website)"),
        (x["smplh_female_pkl"], "SMPL-H female model (MANO/SMPL-H website)"),
        (x["metro"], "METRO's metro_3dpw_state_dict.bin (stage-2 initialisation, METRO release)"),
    ]


def main(argv: list[str]) -> int:
    if len(argv) != 1 or argv[0] not in ("rich", "prox", "rich-train"):
        print("usage: python tools/check_real_data.py rich|prox|rich-train", file=sys.stderr)
        return 2
    target = argv[0]
    params_file = ROOT / "pipelines" / target.split("-")[0] / "params.yaml"
    params = yaml.safe_load(params_file.read_text())
    missing = [(path, what) for path, what in needs(target, params) if not (ROOT / path).exists()]
    if missing:
        print(
            f"{target}: {len(missing)} licensed input(s) missing (paths from {params_file.relative_to(ROOT)}; README 'Real datasets'):",
            file=sys.stderr,
        )
        for path, what in missing:
            print(f"  place {path}: {what}", file=sys.stderr)
        return 1
    print(f"{target}: every input is in place")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
