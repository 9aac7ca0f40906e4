"""The committed reports as a reader gets them (reports/<profile>/report.html): what their first
screen must hold, what no table may show, and a caption under every figure."""
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
REPORTS = ["fashion-mnist", "fashion-mnist-vae", "fashion-mosaic"]


def cells_of(table):
    return [re.sub(r"<[^>]+>", "", c).strip() for c in re.findall(r"<td[^>]*>.*?</td>", table, flags=re.S)]


@pytest.mark.parametrize("profile", REPORTS)
def test_a_committed_report_says_what_it_covers_and_shows_only_what_was_measured(profile):
    html = (ROOT / "reports" / profile / "report.html").read_text()
    assert re.search(r"<title>Gradients as Features \(Mu, Liang &amp; Li, ICLR 2020\): a reproduction on ", html)
    tables = re.findall(r"<table.*?</table>", html, flags=re.S)
    verdicts, coverage = tables[0], tables[1]  # the first screen: verdicts, then coverage
    assert "same rule on the paper's numbers" in verdicts
    assert not re.search(r"(svhn|cifar10|cifar100|voc07|coco2014): [^;<]*\[", verdicts)  # no paper interval
    items = [c.split(":")[0] for c in cells_of(coverage)[::4]]
    assert items == [f"Table {t}" for t in (1, 2, 3, 4)] + [f"C{i}" for i in range(1, 9)]
    bad = [c for t in tables for c in cells_of(t)
           if c in ("nan", "NaN", "<NA>", "&lt;NA&gt;", "None") or re.fullmatch(r"-?\d+\.\d{5,}", c)]
    assert not bad, bad[:5]
    images = re.findall(r"<img [^>]*>", html)
    assert images and all('alt="' in img and 'alt="figure"' not in img for img in images)
    after = html.split("<img ")[1:]   # what follows each figure, up to the next figure or heading
    uncaptioned = [re.search(r'alt="([^"]*)"', a)[1] for a in after if "<em>" not in re.split(r"<h\d", a)[0]]
    assert not uncaptioned, uncaptioned


@pytest.mark.xfail(strict=True, reason="committed reports made at results version 2: regenerate (issue 40)")
def test_the_committed_default_reports_runs_keep_their_keys():
    """Finished runs stay finished: each run key in reports/fashion-mnist/results.csv is the one
    reproduce computes for that experiment now (a parameter added since stays out of keys at
    the value that ran before it: params.ADDED). The default profile alone: its base network is
    committed, while the other profiles' are pre-trained at run time and their keys hash them."""
    import pandas as pd
    from gradfeat_core.experiments.data import data_files
    from gradfeat_core.suite.reproduce import run_keys
    if not data_files("fashion-mnist"):
        pytest.skip("Fashion-MNIST is not installed (make data)")
    committed = pd.read_csv(ROOT / "reports" / "fashion-mnist" / "results.csv")
    keys = run_keys("fashion-mnist", [])  # each run once: a cell another table reads is its twin's
    own = committed[committed.experiment.isin(keys)]
    assert len(set(own.experiment)) == len(set(committed.experiment) - {"t1-actv-conv5", "t1-finetune-conv5",
                                                                        "t1-grad-conv5-ppp", "t1-full-conv5-ppp"})
    assert dict(zip(own.experiment, own.run_key)) == {e: keys[e] for e in own.experiment}


@pytest.mark.xfail(strict=True, reason="committed reports made at results version 2: regenerate (issue 40)")
@pytest.mark.parametrize("profile", REPORTS)
def test_a_committed_reports_convergence_counts_are_its_results_csvs(profile):
    """Read this first counts the runs at their cap and the never trained from the same
    `convergence` column as results.csv (evidence.converged reads it)."""
    import pandas as pd
    from gradfeat_core.suite.evidence import converged
    from gradfeat_core.suite.results import distinct_runs
    frame = pd.read_csv(ROOT / "reports" / profile / "results.csv")
    runs = converged(distinct_runs(frame[frame.status == "done"])).convergence
    text = re.sub(r"<[^>]+>", "", (ROOT / "reports" / profile / "report.html").read_text())
    said = re.search(r"(\d+) of (\d+) runs were at their cap, still improving .*?(\d+) never trained", text, re.S)
    assert said, "Read this first does not count the runs at their cap and the never trained"
    assert [int(n) for n in said.groups()] == [(runs == "at its cap").sum(), len(runs),
                                               (runs == "never trained").sum()]
