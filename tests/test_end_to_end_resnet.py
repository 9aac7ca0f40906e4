"""The quick-resnet profile end to end under papermill: Tables 4 and 2 on the Fashion-MNIST
stand-in at toy size, both base networks pre-trained on the source task, every head on the
mosaics, C8 judged, and the report's ResNet sections. Its own xdist_group, so that `make test`'s
two workers run it beside the quick profile's end-to-end file."""
import json
import re

import pandas as pd
import pytest

from gradfeat_core.suite.evidence import NOT_RUN
from gradfeat_core.suite.reproduce import reproduce

pytestmark = pytest.mark.xdist_group("end_to_end_resnet")


def test_quick_resnet_profile_end_to_end(tmp_path):
    reproduce("quick-resnet", [f"out_dir={tmp_path}"], log=lambda msg: None)
    csv = pd.read_csv(tmp_path / "results.csv")
    assert (csv.status == "done").all() and set(csv.table) == {4, 2}
    assert (csv.metric == "mAP").all() and csv.mean_ap.between(0, 100).all() and csv.accuracy.isna().all()
    assert csv.test_jackknife.notna().all()  # every run's interval covers its test sample
    assert set(csv["base"]) == {"supervised", "rotation-resnet18", "random"}
    t4 = csv[csv.table == 4].set_index(["base", "head"])
    # beside each cell, the paper's VOC07 number of the base network ours stands in for
    assert t4.loc[("supervised", "full"), "paper_score"].tolist() == [84.95, 84.95]
    assert t4.loc[("rotation-resnet18", "full"), "paper_score"].tolist() == [61.70, 61.70]
    assert t4.loc[("random", "full"), "paper_score"].isna().all()
    assert (csv.paper_dataset.dropna() == "voc07").all()
    for objective in ("supervised", "rotation-resnet18"):
        assert (tmp_path / "pretrain" / objective / "pretrain.json").is_file()

    report = json.loads((tmp_path / "report.json").read_text())
    assert {"table4", "table2", "table2_baselines"} <= set(report)
    c8 = next(c for c in report["claims"] if c["claim"] == "C8")
    assert c8["verdict"] != NOT_RUN and c8["comparison"].startswith(("close", "distant"))
    html = (tmp_path / "report.html").read_text()
    for text in ["Table 4: the four heads at the top layer", "Table 2: the ablation", "mAP %",
                 "ImageNet ResNet-18 → VOC07", "rotation-resnet18",
                 "stand-ins for the paper's ImageNet and Jigsaw ResNets",
                 "Tables 1 and 3 (BiGAN and VAE encoders on CIFAR and SVHN) are not covered",
                 'alt="Dot-and-interval plot of Table 4', 'alt="Heat maps of Table 2']:
        assert text in html, text
    tables = re.findall(r"<table.*?</table>", html, flags=re.S)
    cells = [re.sub(r"<[^>]+>", "", c).strip() for t in tables for c in re.findall(r"<td[^>]*>.*?</td>", t, flags=re.S)]
    assert cells and not [c for c in cells if c in ("nan", "NaN", "<NA>", "&lt;NA&gt;", "None")]
    coverage = next(t for t in tables if "Table 2: ablation" in t)
    rows = {re.sub(r"<[^>]+>", "", r).split(":")[0].strip(): r for r in re.findall(r"<tr>.*?</tr>", coverage, flags=re.S)}
    assert "on a stand-in" in rows["Table 2"] and "on a stand-in" in rows["Table 4"]
    assert "not covered" in rows["Table 1"] and "on a stand-in" in rows["C8"]
    assert len(re.findall(r"<td[^>]*>(holds|does not hold|inconclusive|not run)</td>", tables[0])) == 8
