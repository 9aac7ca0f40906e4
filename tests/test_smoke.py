"""Every paper-sized profile end to end under `--smoke`, as a researcher's "does my setup run?"
before GPU hours: the cheapest grid of its own that reaches every notebook, and its report, on archives written at test time in the
data sets' real formats (tests/archives.py) and ResNets imported by `import-weights` from a
torchvision state dict and a Caffe2 Jigsaw pickle. On CUDA too where a GPU is present
(.ci/gpu-check runs these there); skipped here without one."""
import json
import re

import pandas as pd
import pytest
import torch

from gradfeat_core.experiments.params import load_params, smoke
from gradfeat_core.suite.grid import tables
from gradfeat_core.suite.reproduce import reproduce

PAPER_SIZED = ("cifar10", "cifar100", "svhn", "voc07-resnet18", "coco2014-resnet18",
               "voc07-jigsaw-r50", "coco2014-jigsaw-r50")
DEVICES = ["cpu", pytest.param("cuda", marks=pytest.mark.skipif(not torch.cuda.is_available(),
                                                                  reason="no CUDA device here"))]


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("profile", PAPER_SIZED)
def test_a_paper_sized_profile_reaches_its_report_under_smoke(tmp_path, archives, profile, device):
    dataset = load_params(profile)["data"]["dataset"]
    sets = [f"out_dir={tmp_path}", f"data.root={archives[dataset]}", f"device={device}"]
    frame = reproduce(profile, smoke(profile, sets) + sets, log=lambda msg: None)
    assert len(frame) and (frame.status == "done").all(), frame[frame.status != "done"].to_dict("records")
    assert frame.attrs["report"] == str(tmp_path / "report.html")
    csv = pd.read_csv(tmp_path / "results.csv")
    assert (csv.seed == 0).all() and (csv.status == "done").all() and (csv.n_test == 8).all()
    assert set(csv.metric) == {"mAP" if dataset in ("voc07", "coco2014") else "accuracy"}
    inputs = json.loads((tmp_path / "report-inputs.json").read_text())
    assert inputs["linearization"] and inputs["params"]["data"]["n_train"] == 12
    text = re.sub(r"<[^>]+>|\s+", " ", (tmp_path / "report.html").read_text())
    assert re.search(r"Failed runs\s*¶\s*None\.", text), "the report lists failed runs"
    report = json.loads((tmp_path / "report.json").read_text())
    assert len(report["claims"]) == 8 and {f"table{t}" for t in tables(inputs["params"])} <= set(report)
    on = {json.loads(path.read_text())["environment"]["device"]  # each experiment's one result file
          for path in (tmp_path / "runs").glob("t*.json") if not path.name.endswith(".failed.json")}
    assert on and all(d.startswith(device) for d in on), on
