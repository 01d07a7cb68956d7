"""Subprocess entry for the training-loop tests: ``python -m tests.helpers.run_fake OUT DATA key=value ...``.

Registers the fake task and trains it with TrainConfig(data=DATA, out=OUT, **overrides); prints the
result as one JSON line prefixed ``RESULT `` (rank 0). Lightning's ``ddp`` launcher re-executes this
command for the other ranks.
"""

import json
import sys

import yaml

from sahmr.train.loop import TrainConfig, train
from tests.helpers.fake_task import PelvisTask

if __name__ == "__main__":
    out, data, *kv = sys.argv[1:]
    over = {}
    for item in kv:
        k, v = item.split("=", 1)
        over[k] = yaml.safe_load(v)
    cfg = TrainConfig.from_dict({"data": data, "out": out, "val_split": "test", "crop_size": 32, "progress": "none", **over})
    res = train(PelvisTask(), cfg)
    if res["world_size"] == 1 or __import__("torch").distributed.get_rank() == 0:
        print("RESULT " + json.dumps(res), flush=True)
