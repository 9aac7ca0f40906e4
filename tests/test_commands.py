"""Every documented command on every profile in params/profiles/, under `--smoke`: it works and
says what it did in the profile's own terms, or refuses in one line that says what to pass.
Paper-sized profiles read tests/archives.py's real-format archives and imported ResNets; the
Fashion-MNIST ones the real data set (skipped where Debian's dataset-fashion-mnist is missing)."""
import re
import subprocess
from pathlib import Path

import pytest

from gradfeat_core.cli import main
from gradfeat_core.experiments.data import default_root
from gradfeat_core.experiments.params import PARAMS_DIR, load_params
from gradfeat_core.method.registry import OBJECTIVES

ROOT = Path(__file__).resolve().parents[1]
PROFILES = sorted(p.stem for p in (PARAMS_DIR / "profiles").glob("*.yaml"))
MULTILABEL = ("voc07", "coco2014", "fashion-mosaic")


def profile_sets(profile, archives, out_dir):
    """--smoke, out_dir, and data.root where the profile reads a paper-sized archive."""
    dataset = load_params(profile)["data"]["dataset"]
    if dataset.startswith("fashion") and not Path(default_root(dataset)).is_dir():
        pytest.skip("needs Debian's dataset-fashion-mnist (make data)")
    root = [f"data.root={archives[dataset]}"] if dataset in archives else []
    return ["--smoke", "--set", f"out_dir={out_dir}", "--set", "device=cpu",
            *(a for r in root for a in ("--set", r))], dataset


def one_line_error(capsys, *words):
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(lines) == 1 and all(w in lines[0] for w in words), err
    return lines[0]


@pytest.mark.parametrize("profile", PROFILES)
def test_every_command_works_on_every_profile_or_says_what_to_pass(tmp_path, capsys, archives, profile):
    args, dataset = profile_sets(profile, archives, tmp_path)
    params = load_params(profile)
    imported = OBJECTIVES[params["pretrain"]["objective"]].imported

    assert main(["reproduce", "--profile", profile, "--dry-run", *args]) == 0
    printed = capsys.readouterr().out
    assert "in all" in printed and f"{profile}-smoke" not in printed  # our out_dir, not smoke's own

    if imported:
        assert main(["pretrain", "--profile", profile, *args]) == 2
        one_line_error(capsys, "imported", "import-weights")
        assert main(["quality", "--profile", profile, *args]) == 2
        one_line_error(capsys, "imported")
    else:
        assert main(["pretrain", "--profile", profile, *args]) == 0
        out = capsys.readouterr().out
        assert re.search(r"finished after 4 iterations", out), out
        assert main(["quality", "--profile", profile, *args]) == 0
        out = capsys.readouterr().out
        assert "random" in out and "pretrained" in out, out

    # the profile's own depth (its top block), its metric, the report's protocol
    assert main(["train-head", "--profile", profile, "--head", "full", *args]) == 0
    out, err = capsys.readouterr()
    top = params["model"]["layers"]
    if dataset in MULTILABEL:
        assert re.search(r"test mAP.* \d\.\d{4} \(VOC07 11-point \d\.\d{4}\)", out), out
    else:
        assert re.match(r"test accuracy \d\.\d{4}", out), out
    assert f"(full {top}, 4 iterations" in out and str(tmp_path / "train-head") in out
    if params["reproduce"]["heads"]:
        assert "reproduce.heads" in err


def test_train_head_takes_the_reports_subset_and_a_set_overrides_it(tmp_path, capsys):
    """fashion-mnist's report trains on 16,000 images (reproduce.heads); so does train-head,
    unless --set says otherwise."""
    from gradfeat_core.suite.grid import head_params
    params, section = head_params("fashion-mnist")
    assert section == "heads" and params["data"]["n_train"] == 16000
    params, section = head_params("fashion-mnist", ["data.n_train=1000"])
    assert params["data"]["n_train"] == 1000
    params, section = head_params("fashion-mnist", ["model.layers=conv4-5"])
    assert section == "ablation" and params["data"]["n_train"] == 16000
    assert head_params("voc07-resnet18")[0]["model"]["layers"] == "block8"


@pytest.mark.skipif(not (ROOT / ".venv" / "bin" / "python").exists(), reason="needs the .venv make creates")
@pytest.mark.parametrize("profile,layers", [("voc07-resnet18", "block8"), ("fashion-mnist", "conv5")])
def test_make_train_head_passes_the_profiles_own_depth(profile, layers):
    """make train-head leaves θ2 to the profile unless LAYERS is given (make -n: what it runs)."""
    def command(*extra):
        done = subprocess.run(["make", "-n", "--no-print-directory", "-o", ".venv/.installed", "-o", "data",
                               "train-head", f"PROFILE={profile}", *extra], cwd=ROOT, capture_output=True, text=True)
        assert done.returncode == 0, done.stderr
        return done.stdout
    assert "--layers" not in command() and f"--profile {profile} --head full" in command()
    assert f"--layers {layers}" in command(f"LAYERS={layers}")
    assert command("ARGS=--smoke --set device=cpu").rstrip().endswith("--smoke --set device=cpu")
