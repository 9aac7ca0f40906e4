"""The benchmark's pieces run and report what they say (timings themselves are not tested)."""
import torch

from gradfeat_core.experiments.bench import vae_times


def test_vae_heads_are_timed_beside_the_ali_encoders():
    rows = vae_times(torch.device("cpu"), batch=4, repeats=1, images=8)
    what = {(r["arch"], r["layers"], r["what"]) for r in rows}
    heads = ("grad", "full", "finetune", "frozen part, 8 images")
    assert what == {(a, l, h) for a, l in (("ali", "conv5"), ("vae", "conv8")) for h in heads}
    assert all(r["ms"] > 0 for r in rows)
