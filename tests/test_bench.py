"""The benchmark as `make bench` runs it (main), at tiny sizes: its rows, the arithmetic of its
ratios and sizes, what it prints, and bench.json's schema. Timings themselves are not tested."""
import contextlib
import functools
import io
import json
import math

import pytest

from gradfeat_core.experiments import bench
from gradfeat_core.method.linear_model import HEADS
from gradfeat_core.method.registry import ARCHITECTURES, OBJECTIVES
from gradfeat_core.method.nets import (FEATURE_DIM, Encoder, fold_batchnorm, parse_layers, split,
                                        theta2_names)

BATCH = 2
# main's other measurements have sizes of their own: these, each a keyword of its function
TINY = {"step_times": {"images": 8}, "eval_seconds": {"n_images": 4, "batch": 2},
        "per_sample_gradients": {"n": 1}, "pretrain_speed": {"repeats": 1, "batch": 2},
        "architecture_times": {"images": 2}}
DEPTHS, CLASSES = ("conv5", "conv4-5", "conv3-5"), 10
ROW_KEYS = {"head", "layers", "cached", "batch", "path", "ms_per_step", "floor_ms",
            "ratio_to_finetune", "ratio_to_floor"}


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """(bench.json, stdout, its path) of one `python -m gradfeat_core.experiments.bench` at
    BATCH, one repeat."""
    out = tmp_path_factory.mktemp("bench") / "bench.json"
    printed = io.StringIO()
    with pytest.MonkeyPatch.context() as mp, contextlib.redirect_stdout(printed):
        for name, sizes in TINY.items():
            mp.setattr(bench, name, functools.partial(getattr(bench, name), **sizes))
        bench.main(["--device", "cpu", "--batch", str(BATCH), "--repeats", "1", "--out", str(out)])
    return json.loads(out.read_text()), printed.getvalue(), out


def quotient_of(ratio, a, b, places=3):
    """ratio = round(A / B, places) for some A and B that round to a and b (as the bench rounds
    them): a ratio of two other timings lands outside this interval but for a near-tie."""
    h = 0.5 * 10 ** -places
    return (a - h) / (b + h) - h - 1e-12 <= ratio <= (a + h) / (b - h) + h + 1e-12


def test_bench_json_has_every_section_and_says_where_it_was_written(run):
    data, printed, out = run
    assert set(data) == {"rows", "floor_ms", "cache", "eval_seconds_10k", "architectures", "flops",
                         "per_sample_gradients", "pretrain", "environment"}
    assert printed.splitlines()[-1] == f"wrote {out}"


def test_one_row_per_depth_cache_setting_head_and_path(run):
    rows = run[0]["rows"]
    assert all(set(r) == ROW_KEYS for r in rows)
    cells = [(r["layers"], r["cached"], r["head"], r["path"]) for r in rows]
    variants = [(h, "fast") for h in HEADS] + [("grad", "jvp"), ("full", "jvp")]
    assert sorted(cells) == sorted((d, c, h, p) for d in DEPTHS for c in (True, False) for h, p in variants)
    assert all(r["batch"] == BATCH for r in rows)
    assert all(isinstance(r[k], float) and r[k] > 0 for r in rows for k in ROW_KEYS if "ms" in k or "ratio" in k)


def test_each_ratio_is_the_quotient_of_two_timings_of_its_own_group(run):
    """÷ finetune: to fine-tuning (fast) at the same depth and cache setting; ÷ floor: to the floor
    timed with that group; the top-level floor_ms is the groups' median."""
    rows = run[0]["rows"]
    floors = []
    for depth in DEPTHS:
        for cached in (True, False):
            group = [r for r in rows if (r["layers"], r["cached"]) == (depth, cached)]
            finetune, = (r for r in group if (r["head"], r["path"]) == ("finetune", "fast"))
            assert finetune["ratio_to_finetune"] == 1.0
            floor, = {r["floor_ms"] for r in group}
            floors.append(floor)
            for r in group:
                assert quotient_of(r["ratio_to_finetune"], r["ms_per_step"], finetune["ms_per_step"]), r
                assert quotient_of(r["ratio_to_floor"], r["ms_per_step"], floor), r
    assert run[0]["floor_ms"] == sorted(floors)[len(floors) // 2]


def test_the_printed_table_is_the_rows(run):
    data, printed, _ = run
    lines = printed.splitlines()
    first = next(i for i, line in enumerate(lines) if line.startswith("floor (two "))
    assert lines[first].startswith(f"floor (two {BATCH}x4096x512 matrix products")
    assert math.isclose(float(lines[first].split()[-2]), data["floor_ms"], abs_tol=0.0051)
    assert lines[first + 1].split() == ["head", "path", "layers", "cached", "batch", "ms/step",
                                        "÷", "finetune", "÷", "floor"]
    table = [line.split() for line in lines[first + 2:first + 2 + len(data["rows"])]]
    assert table == [[r["head"], r["path"], r["layers"], str(r["cached"]), str(r["batch"]),
                      f"{r['ms_per_step']:.2f}", f"{r['ratio_to_finetune']:.2f}", f"{r['ratio_to_floor']:.2f}"]
                     for r in data["rows"]]


def test_cache_sizes_add_up_to_the_data_sets_totals(run):
    data, printed, _ = run
    cache = data["cache"]
    assert [(r["data"], r["layers"]) for r in cache] == [(d, l) for d in bench.DATA_SIZES for l in DEPTHS]
    for r in cache:
        _, n_train, n_test, _ = bench.DATA_SIZES[r["data"]]
        assert r["bytes_per_image"] == r["z_bytes"] + r["primal_bytes"] + r["features_bytes"]
        assert r["total_gib"] == round(r["bytes_per_image"] * (n_train + n_test) / 2 ** 30, 2)
        assert r["features_bytes"] == 4 * FEATURE_DIM  # f_θ̄(x), float32
    for depth in DEPTHS:  # what lies above conv1 does not depend on the images' channels
        assert len({(r["z_bytes"], r["primal_bytes"]) for r in cache if r["layers"] == depth}) == 1
    assert f"{cache[0]['data']:14} {cache[0]['layers']:8} {cache[0]['z_bytes']:8d}" in printed


def test_evaluation_per_sample_gradients_and_pretraining_report_what_they_ran(run):
    data, printed, _ = run
    assert set(data["eval_seconds_10k"]) == {f"{h} {c}" for h in HEADS for c in ("cached", "raw")}
    explicit = data["per_sample_gradients"]
    assert set(explicit) == {"layers", "samples", "explicit_ms_per_sample", "jvp_ms_per_sample",
                             "explicit_bytes_per_sample", "w2_bytes_shared_by_all_samples"}
    assert (explicit["layers"], explicit["samples"]) == ("conv5", TINY["per_sample_gradients"]["n"])
    layers = parse_layers("conv5")
    top = split(fold_batchnorm(Encoder(in_channels=1)), layers)[1]  # conv5's weight and bias
    theta2 = sum(p.numel() for n, p in top.named_parameters() if n in theta2_names(top, layers))
    assert explicit["w2_bytes_shared_by_all_samples"] == 4 * theta2
    # one float32 per class and θ2 entry per sample: c times w2, what the JVP never builds
    assert explicit["explicit_bytes_per_sample"] == CLASSES * explicit["w2_bytes_shared_by_all_samples"]
    pretrain = data["pretrain"]
    assert set(pretrain) == {o for o, entry in OBJECTIVES.items() if not entry.imported}
    assert all(set(v) == {"batch", "iterations_per_s"} and v["batch"] == TINY["pretrain_speed"]["batch"]
               and v["iterations_per_s"] > 0 for v in pretrain.values())
    assert f"pre-training, iterations/s: {pretrain}" in printed
    assert data["environment"]["device"] == "cpu" and {"torch", "code_version"} <= set(data["environment"])


def test_every_registered_base_network_is_timed_at_its_top_block_beside_its_flops(run):
    data, printed, _ = run
    images = TINY["architecture_times"]["images"]
    heads = ("grad", "full", "finetune", bench.FLOOR, f"frozen part, {images} images")
    tops = [(arch, cls.BENCH_LAYERS[0]) for arch, cls in ARCHITECTURES.items()]
    assert {"ali", "vae", "resnet18", "resnet50"} <= set(ARCHITECTURES)
    rows = data["architectures"]
    assert [(r["arch"], r["layers"], r["what"]) for r in rows] == [(a, l, h) for a, l in tops for h in heads]
    assert all(r["ms"] > 0 for r in rows)
    ms = {(r["arch"], r["what"]): r["ms"] for r in rows}
    for r in rows:  # each step's ratios are its time over fine-tuning's and the floor's, as printed
        if r["what"] in ("grad", "full", "finetune"):
            # (from the unrounded times; the rows' ms are rounded to 0.01 ms)
            assert r["ratio_to_finetune"] == pytest.approx(r["ms"] / ms[r["arch"], "finetune"], rel=0.05)
            assert r["ratio_to_floor"] == pytest.approx(r["ms"] / ms[r["arch"], bench.FLOOR], rel=0.05)
            assert f"{r['what']:26} {r['ms']:9.2f}  ÷ finetune {r['ratio_to_finetune']:5.2f}" in printed
        else:
            assert set(r) == {"arch", "layers", "what", "ms"}
    assert f"each base network at its top block, batch {BATCH}, cached (ms;" in printed
    flops = data["flops"]
    assert [(a, f["layers"]) for a, f in flops.items()] == tops
    for arch, f in flops.items():  # θ2 and the blocks below it add up to the whole network
        assert f["theta2_flops"] + f["below_flops"] == sum(ARCHITECTURES[arch](1).flops().values())
    # by hand: conv5 maps 256×4×4 to 512×1×1 (a 4×4 kernel); conv8, 3×3 at 4×4, 9 times that
    assert flops["ali"]["theta2_flops"] == 2 * 512 * 256 * 4 * 4
    assert flops["vae"]["theta2_flops"] == 9 * flops["ali"]["theta2_flops"]
    assert f"  vae  conv8  θ2 {flops['vae']['theta2_flops'] / 1e6:9.2f}" in printed
