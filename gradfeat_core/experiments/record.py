"""One run of a notebook, resolved once: a RunRecord.

`reproduce` builds one record per run (`record_of`: its parameters resolved, its seeds, its run
key, the one result file it writes) and hands it to the notebook as its one papermill parameter,
JSON text (`RunRecord.to_json`: papermill reads parameters as YAML, which would read 1e-05 as a
string); the notebook rebuilds it with one call (`notebook_run`) and runs the experiment on its
parameters, resolving nothing again. Opened by hand, a notebook resolves its manual parameters
into a record the same way.

A run is keyed by what decides its numbers (`run_key`): its notebook (its content), the
parameters that matter to it (params.deciding), its seeds, the content of the data and encoder
files it reads, the names of the result files it reads, the requirements and the results version.
"""
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

import yaml

from ..method.registry import ARCHITECTURES
from .data import data_files
from .params import PARAMS_DIR, combine, deciding, digest, load_params, merge
from .results import RESULTS_VERSION, ROOT, file_sha256
from .run import schedules_read

NOTEBOOKS = ROOT / "notebooks"
FILES = {"base.checkpoint", "base.random_checkpoint"}  # paths: a run key takes their content

# Notebooks rewritten without a change to any number they compute: {sha256 of the notebook now:
# the sha256 that its runs' keys carry}, so that its finished runs stay finished. Any other edit
# of the notebook is another sha256, and its runs are new.
SAME_AS = {
    "02a008fc88af92a89b23287e16599daaf375d65924646a414ea9fa9dc8893160":  # 01_pretrain: its one parameter a RunRecord, the probes from experiments/
        "f4fe22d1d9a3637c640194cd6f00473e91555ee00a6cfe1895f72efc9f0e9b81",
    "e05679f5ef28a3218a67ae8830d35298844d1609238498934660708a9b3acc60":  # 02_heads: its one parameter a RunRecord
        "b67ce501781226f098a000d695afc97748393ddb08087bd7e81d129a0b04fbdb",
    "97a2127d45e78198c4cfff5d1ef75000885c822fd89e1566393c9513addf8f62":  # 03_linearization: its one parameter a RunRecord
        "1cae2abb5dac9b81d13fb9ac856d81573c6c943c2d4eaa2584f97d8c43dd8f84",
}


@dataclass(frozen=True)
class Experiment:
    """One experiment of the grid (suite.grid.experiments): a head on a base network, trained for
    each seed (one 02_heads run), and the cell of the paper's table it reproduces."""
    name: str                  # e.g. t1-grad-conv4-5-rpp (θ1, θ2, ω initials)
    table: int                 # the paper's table: 1 or 3 (ALI, VAE), 2 or 4 (ResNets)
    head: str                  # actv | grad | full | finetune
    layers: str                # θ2, e.g. conv5 or conv4-5
    theta1: str = "pretrained"  # where the gradient term's θ1, θ2 and ω come from
    theta2: str = "pretrained"
    omega: str = "pretrained"
    encoder: str = "pretrained"  # the base network: pre-trained, or the random-encoder reference
    seeds: tuple = (0,)
    protocol: dict = field(default_factory=dict)  # its table's parameters (reproduce.table<N>)
    objective: str = ""        # the base network's pre-training: "" the profile's, else one of
                               # reproduce.other_bases (its params file and its encoder)

    @property
    def sources(self):
        return self.theta1, self.theta2, self.omega

    def overrides(self):
        """The parameters this experiment sets: its model and base network, then its protocol."""
        own = {"model": {"head": self.head, "layers": self.layers, "theta1": self.theta1,
                         "theta2": self.theta2, "omega": self.omega},
               "base": {"encoder": self.encoder}}
        return combine(own, self.protocol)

    def params(self, params):
        """`params` (resolved) as this experiment runs them."""
        return merge(params, self.overrides(), f"experiment {self.name}")

    def as_dict(self):
        """JSON-able (Experiment.from_dict reads it back)."""
        return dict(asdict(self), seeds=list(self.seeds))

    @classmethod
    def from_dict(cls, d):
        return cls(**dict(d, seeds=tuple(d["seeds"])))


def heads_layers(params, grid=None):
    """θ2 of Table 3's experiments: grid.yaml's heads.layers (grid: that file, already read),
    `top` being the base network's topmost block (conv5 for the ALI encoder, conv8 for the VAE's)."""
    grid = grid or yaml.safe_load(open(PARAMS_DIR / "grid.yaml"))
    layers = grid["heads"]["layers"]
    return ARCHITECTURES[params["base"]["arch"]].LAYERS[-1] if layers == "top" else layers


def resolve(profile, objective, overrides=None, experiment=None):
    """(Experiment, parameters) of a run asked for by profile, objective, `overrides` (a nested
    mapping) and `experiment` (Experiment.as_dict): the profile's parameters resolved with
    `overrides`, then the experiment's; with no experiment, the parameters' own model section as
    experiment 'manual' of Table 3, seed 0."""
    params = load_params(profile, objective=objective, overrides=overrides)
    if experiment:
        cell = Experiment.from_dict(experiment)
        return cell, cell.params(params)
    model = params["model"]
    cell = Experiment("manual", 3, model["head"], model["layers"], model["theta1"], model["theta2"],
                      model["omega"], params["base"]["encoder"], (params["seed"],))
    return cell, params


@dataclass(frozen=True)
class RunRecord:
    """One run: what it is, what it runs on, and the one result file it writes."""
    notebook: str        # 01_pretrain | 02_heads | 03_linearization
    name: str            # e.g. t3-grad-conv5, pretrain-ali, linearization
    params: dict         # its resolved parameters (an experiment's applied): what it runs on
    seeds: tuple         # 02_heads: the seeds it trains; () for the others
    key: str             # run_key ('' for a notebook opened by hand)
    result: str          # the one result file it writes: <runs>/<name>-<key>.json
    table: int | None = None  # 02_heads: the paper's table of its experiment
    reads: dict = field(default_factory=dict)  # result files of other runs it reads, by role
    # (03_linearization: full_result, finetune_result)
    asked: dict = field(default_factory=dict)  # what it was resolved from: profile, objective,
    # overrides[, experiment] (a tool that resolves a protocol of its own reads them: 01's probes)

    @property
    def experiment(self):
        """The Experiment of a 02_heads run of the grid, else None."""
        cell = self.asked.get("experiment")
        return Experiment.from_dict(cell) if cell else None

    def identity(self):
        """What a result file says of the run that wrote it: results.csv reads its key here."""
        return {"name": self.name, "notebook": self.notebook, "key": self.key}

    def summary(self, results):
        """What 02_heads writes as its last act: the experiment, its resolved parameters, each
        seed's RunResult as its summary keeps it, and the run's identity."""
        return {"experiment": self.name, "table": self.table, "status": "done",
                "seeds": list(self.seeds), "params": self.params,
                "runs": [r.summary() for r in results],
                "environment": results[0].environment if results else None, "run": self.identity()}

    def as_dict(self):
        return dict(asdict(self), seeds=list(self.seeds))

    def to_json(self):
        return json.dumps(self.as_dict())

    @classmethod
    def from_dict(cls, d):
        return cls(**dict(d, seeds=tuple(d["seeds"])))


def notebook_sha256(notebook):
    """The sha256 a run key carries for `notebook` (its content's, or SAME_AS's for it)."""
    sha = file_sha256(NOTEBOOKS / f"{notebook}.ipynb")
    return SAME_AS.get(sha, sha)


def decisive(resolved, notebook):
    """The resolved parameters that decide a run's numbers (params.deciding), with every file
    named by its sha256 instead of its path (the same key in any clone, on any machine) and the
    data by its files'. A head (02_heads, 03_linearization) reads the base network's files, so
    the pre-training settings that made them are not its parameters; nor are the schedules of
    heads other than its own and actv's (whose run gives ω̄)."""
    out = deciding(resolved, () if notebook == "01_pretrain" else ("pretrain",))
    for section, value in out.items():
        if isinstance(value, dict):
            out[section] = {k: file_sha256(v) if f"{section}.{k}" in FILES else v for k, v in value.items()}
    data = resolved["data"]
    out["data"] = {k: v for k, v in out["data"].items() if k != "root"}
    out["data"]["files"] = {name: file_sha256(path) for name, path in
                            data_files(data["dataset"], data["root"]).items()}
    out["train"] = schedules_read(out["train"], resolved["model"]["head"])
    return out


def run_key(notebook, params, seeds=(), reads=None):
    """The hash of what decides a run's numbers: the notebook (its content), its decisive
    parameters, its seeds, the names of the result files it reads (each holds that run's key),
    requirements.txt and RESULTS_VERSION. Not the package: a refactor or a docstring edit keeps
    every finished run; a change that moves numbers bumps RESULTS_VERSION (tests/test_golden.py)."""
    inputs = {role: Path(path).name if path else path for role, path in (reads or {}).items()}
    inputs["seeds"] = list(seeds) or None
    return digest({"notebook": notebook, "notebook_sha256": notebook_sha256(notebook),
                   "inputs": inputs, "parameters": decisive(params, notebook),
                   "requirements": file_sha256(ROOT / "requirements.txt"),
                   "results_version": RESULTS_VERSION})


def record_of(notebook, name, asked, runs_dir, reads=None):
    """The RunRecord of a run of `notebook` named `name`, asked for as `asked` (profile,
    objective, overrides[, experiment]: resolve's arguments), reading the result files `reads`;
    its result goes to runs_dir/<name>-<key>.json."""
    experiment = asked.get("experiment")
    cell, params = resolve(asked["profile"], asked["objective"], asked.get("overrides"), experiment)
    seeds, reads = (cell.seeds if experiment else ()), dict(reads or {})
    key = run_key(notebook, params, seeds, reads)
    return RunRecord(notebook, name, params, seeds, key, str(Path(runs_dir) / f"{name}-{key}.json"),
                     cell.table if experiment else None, reads, dict(asked))


def notebook_run(notebook, record="", profile="quick", objective="ali", overrides=None,
                 experiment=None, **reads):
    """The RunRecord a notebook runs: reproduce's (`record`, RunRecord.to_json's text), or, for a
    notebook opened by hand (record ""), one resolved from its manual parameters, not keyed,
    its result <out_dir>/runs/<notebook>-manual.json. reads: the result files it reads, by role."""
    if record:
        return RunRecord.from_dict(json.loads(record))
    asked = {"profile": profile, "objective": objective, "overrides": overrides or {},
             "experiment": experiment or {}}
    cell, params = resolve(profile, objective, overrides, experiment)
    result = Path(params["out_dir"]) / "runs" / f"{notebook}-manual.json"
    return RunRecord(notebook, cell.name, params, cell.seeds, "", str(result), cell.table, reads, asked)
