"""The paper's numbers as data: every printed number once, tagged, and spot checks against the text."""
from gradfeat_core.suite.paper import paper_numbers


def test_counts_per_table():
    records = paper_numbers()
    count = {t: sum(r["table"] == t for r in records) for t in (1, 2, 3, 4)}
    assert count == {1: 8 * 6 + 4, 2: 8 * 4 + 3, 3: 8 * 3, 4: 9 * 2 - 1}


def find(**tags):
    hits = [r for r in paper_numbers() if all(r.get(k) == v for k, v in tags.items())]
    assert len(hits) == 1, (tags, hits)
    return hits[0]["value"]


def test_spot_checks_against_the_paper():
    assert find(table=3, base="bigan", head="full", dataset="cifar10") == 70.51
    assert find(table=3, base="vae", head="finetune", dataset="svhn") == 93.61
    assert find(table=1, theta1="random", theta2="pretrained", omega="random",
                layers="conv4-5", head="grad") == 33.20
    assert find(table=1, row="baseline", head="finetune", layers="conv3-5") == 74.30
    assert find(table=4, base="imagenet-resnet18", head="grad", dataset="coco2014") == 66.33
