"""`python -m gradfeat_core reproduce`: every experiment of a profile, each a papermill run of a
notebook in its own kernel, then results.csv and report.html.

Each run is one RunRecord (experiments.record: its parameters resolved once, its seeds, its run
key), the notebook's one parameter; it counts as done only when its one result JSON exists
(papermill can exit 0 after a sys.exit in a cell). Done runs are skipped on a rerun; a failed run
is recorded with its error in <name>-<key>.failed.json and the others go on.
"""
import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from ..experiments.errors import UserError
from ..experiments.params import ParamError, assignments, combine, load_params
from ..experiments.progress import tqdm
from ..experiments.record import NOTEBOOKS, RunRecord, heads_layers, record_of, resolve
from ..experiments.results import ROOT, file_sha256, write_json
from ..method.imported import IMPORT
from ..method.registry import OBJECTIVES
from . import cluster, sensitivity
from .grid import experiments, tables, twins
from .frame import load_summaries, results_frame

TEMPLATES = Path(__file__).resolve().parent / "templates"  # offline/: the lab template minus its CDN scripts


class ReportError(RuntimeError):
    """The report notebook failed: the runs are kept, the report is not written."""


@dataclass
class Run:
    """A run of reproduce: its RunRecord, and the files it leaves beside its result."""
    record: RunRecord

    # what the record says: the notebook, the run's name and key, what it was asked for (profile,
    # objective, overrides[, experiment]), and a 02_heads run's Experiment (else None)
    notebook = property(lambda self: self.record.notebook)
    name = property(lambda self: self.record.name)
    key = property(lambda self: self.record.key)
    parameters = property(lambda self: self.record.asked)
    experiment = property(lambda self: self.record.experiment)

    @property
    def result(self):
        return Path(self.record.result)

    @property
    def runs_dir(self):
        return self.result.parent

    @property
    def failed(self):
        return self.runs_dir / f"{self.name}-{self.key}.failed.json"

    @property
    def output(self):
        return self.runs_dir / f"{self.name}-{self.key}.ipynb"


def run_params(parameters):
    """The resolved parameters of a run asked for as `parameters` (RunRecord.asked)."""
    return resolve(parameters["profile"], parameters["objective"], parameters.get("overrides"),
                   parameters.get("experiment"))[1]


def make_run(notebook, name, parameters, runs_dir, experiment=None, reads=None):
    """A Run of `notebook` asked for as `parameters` (profile, objective, overrides), of
    `experiment` where it runs one, reading the result files `reads` (by role): its RunRecord,
    resolved and keyed once."""
    asked = dict(parameters, experiment=experiment.as_dict()) if experiment else parameters
    return Run(record_of(notebook, name, asked, runs_dir, reads))


def check_parameters(notebook_path, parameters):
    """Papermill only warns about a parameter the notebook does not declare; here it is an error."""
    import papermill
    declared = papermill.inspect_notebook(str(notebook_path))
    unknown = sorted(set(parameters) - set(declared))
    if unknown:
        raise ParamError(f"{Path(notebook_path).name} declares no parameter {', '.join(unknown)}; "
                         f"it declares {', '.join(declared)}")


# `python -m papermill` without rfc3987_syntax: an optional extra of jsonschema (jupyterlab's
# jupyter-events installs it) that builds a grammar when imported, 1.1-1.5 s of every notebook's
# papermill process here, to check IRIs, which nbformat's schema has none of.
PAPERMILL = ("import sys; sys.modules['rfc3987_syntax'] = None; sys.argv[0] = 'papermill'; "
             "from papermill.cli import papermill; papermill()")


def papermill(source, output, parameters, timeout=None):
    """Execute a notebook in a papermill process of its own (its own kernel too); returns None
    or the error's last line. A process, not papermill's Python API: nbclient takes over SIGINT
    and SIGTERM while a notebook runs, so in-process a Ctrl-C would only kill that one kernel
    and the grid would go on; here it reaches this process and stops the whole reproduction."""
    command = [sys.executable, "-c", PAPERMILL, str(source), str(output), "--kernel", "python3",
               "--cwd", str(ROOT), "--no-progress-bar", "-y", json.dumps(parameters)]
    if timeout:
        command += ["--execution-timeout", str(timeout)]
    env = dict(os.environ, GRADFEAT_PROGRESS="text")  # text bars in the executed notebook
    done = subprocess.run(command, capture_output=True, text=True, env=env)
    if done.returncode == 0:
        return None
    lines = [line for line in done.stderr.splitlines() if line.strip() and "IPKernelApp" not in line]
    return lines[-1].strip() if lines else f"papermill exited with {done.returncode}"


def execute(run, timeout, notebooks_dir=None):
    """Run one notebook; True when its result JSON exists afterwards. A pre-training that
    stopped at its pretrain.max_minutes (pretrain.json: 'interrupted') is in progress, not
    failed: no failure is recorded and its progress ('k of n updates') is returned instead."""
    source = Path(notebooks_dir or NOTEBOOKS) / f"{run.notebook}.ipynb"
    parameters = {"record": run.record.to_json()}
    run.runs_dir.mkdir(parents=True, exist_ok=True)
    try:
        check_parameters(source, parameters)
        error = papermill(source, run.output, parameters, timeout)
    except ParamError as e:
        error = str(e)
    if run.result.is_file():
        run.failed.unlink(missing_ok=True)
        return True
    progress = in_progress(run) if error is None else None
    if progress:
        return progress
    record_failure(run, error or "the notebook ended without writing its result (sys.exit or a "
                   "timed-out cell?)")
    return False


def record_failure(run, error):
    """<name>-<key>.failed.json: the run's error, its executed notebook, its parameters."""
    write_json(run.failed, {"notebook": run.notebook, "name": run.name, "error": error,
                            "output": str(run.output), "parameters": run.parameters})


def in_progress(run):
    """'k of n updates' for a pre-training run stopped by its time budget, else None."""
    if run.notebook != "01_pretrain":
        return None
    params = run.record.params
    progress = Path(params["out_dir"]) / "pretrain" / params["pretrain"]["objective"] / "pretrain.json"
    state = json.loads(progress.read_text()) if progress.is_file() else {}
    if state.get("status") != "interrupted":
        return None
    return f"{state['iterations']} of {params['pretrain']['iterations']} updates"


def _state(run, outcome):
    return ("done" if outcome is True else f"in progress ({outcome})" if outcome
            else f"FAILED, see {run.failed}")


def run_all(runs, timeout, log, desc, executor=None):
    """Execute the runs that are not done, one after another here, or as one job array of
    `executor` (cluster.executor); returns (done, failed) lists."""
    done, failed = [], []
    todo = [r for r in runs if not r.result.is_file()]
    log(f"{desc}: {len(runs) - len(todo)} of {len(runs)} done already, {len(todo)} to run")
    if executor is not None and todo:
        outcomes = cluster.run_array(executor, execute, todo, timeout, log, record_failure)
        for run, outcome in zip(todo, outcomes):
            log(f"  {run.name}: {_state(run, outcome)}")
    else:
        for run in tqdm(todo, desc=desc, unit="run"):
            start = time.perf_counter()
            outcome = execute(run, timeout)
            log(f"  {run.name}: {_state(run, outcome)} ({time.perf_counter() - start:.0f} s)")
    for run in runs:
        (done if run.result.is_file() else failed).append(run)
    return done, failed


def stage_executor(kind, params, stage, runs_dir):
    """None for the local loop, else the submitit executor of `stage` (pretrain, heads,
    linearization) with its resources from reproduce.slurm."""
    if kind == "local":
        return None
    slurm = params["reproduce"]["slurm"]
    return cluster.executor(kind, runs_dir / "jobs", dict(slurm[stage], array_parallelism=
                                                          slurm["array_parallelism"]), f"gradfeat-{stage}")


def pretrain_budget(params, kind):
    """pretrain.max_minutes for one pre-training call: the profile's, or, when it sets none, 90%
    of the time one call may take (the notebook cell's reproduce.timeout, and under slurm the
    job's time_min), so that a long pre-training checkpoints and stops before it is killed and
    the next call resumes it."""
    if params["pretrain"]["max_minutes"]:
        return params["pretrain"]["max_minutes"]
    limit = params["reproduce"]["timeout"] / 60
    if kind != "local":
        limit = min(limit, params["reproduce"]["slurm"]["pretrain"]["time_min"])
    return round(0.9 * limit, 2)


def failed_summary(run, experiment):
    """The results.csv entry of an experiment whose notebook (`run`) failed."""
    error = json.loads(run.failed.read_text())["error"] if run.failed.is_file() else "not run"
    return {"experiment": experiment.name, "table": experiment.table, "status": "failed",
            "error": error, "seeds": list(experiment.seeds), "params": run.record.params,
            "source": str(run.result), "run": run.record.identity()}


def base_network(params):
    """Where this reproduction's base network comes from: the committed encoder the profile
    names (base.checkpoint, its sha256 checked by load_params) or this run's pre-training."""
    path = params["base"]["checkpoint"]
    if path and OBJECTIVES[params["pretrain"]["objective"]].imported:  # the paper's, import-weights'
        return {"source": "imported", "path": path, "pretrain_json": None}
    if path:
        return {"source": "committed", "path": path,
                "pretrain_json": str(Path(path).with_name("pretrain.json"))}
    return {"source": "pre-trained in this run"}


def notebook_overrides(sets, out):
    """The overrides every notebook of a reproduction gets: the command line's, in out_dir."""
    return combine(assignments(sets), {"out_dir": str(out)})


def pretrained_encoders(out, objective):
    """The overrides that point every run after pre-training at its encoders."""
    encoders = Path(out) / "pretrain" / objective
    return {"base": {"checkpoint": str(encoders / "encoder.pt"), "checkpoint_sha256": None,
                     "random_checkpoint": str(encoders / "random_encoder.pt")}}


def pretraining_run(params, common, overrides, executor, runs_dir):
    """The 01_pretrain run of `params` with its own parameters (reproduce.pretrain: a transfer's
    source data set) under this executor's time budget (pretrain_budget)."""
    budget = {"pretrain": {"max_minutes": pretrain_budget(params, executor)}}
    own = combine(params["reproduce"]["pretrain"], budget)
    return make_run("01_pretrain", f"pretrain-{params['pretrain']['objective']}",
                    dict(common, overrides=combine(overrides, own)), runs_dir)


def other_pretrainings(params, common, overrides, executor, runs_dir, sets=()):
    """The 01_pretrain run of each of reproduce.other_bases (its own objective's parameters) that
    is pre-trained here (an imported network's weights are its params file's base.checkpoint)."""
    return [pretraining_run(load_params(common["profile"], sets, objective=o),
                            dict(common, objective=o), overrides, executor, runs_dir)
            for o in params["reproduce"]["other_bases"] if not OBJECTIVES[o].imported]


def experiment_runs(params, common, overrides, runs_dir, grid=None):
    """(grid, twins, runs): one 02_heads run per experiment of the grid (the profile's, or
    `grid`) that no other repeats; one on another base network (reproduce.other_bases) runs as
    its objective, on its encoders."""
    grid = experiments(params) if grid is None else grid
    repeats = twins(grid)
    out = Path(params["out_dir"])

    def parameters(e):
        if not e.objective:
            return dict(common, overrides=overrides)
        if OBJECTIVES[e.objective].imported:  # its params file names its weights, not the profile's encoders
            encoders = pretrained_encoders(out, e.objective)["base"]
            own = {k: v for k, v in overrides.get("base", {}).items() if k not in encoders}
            return dict(common, objective=e.objective, overrides={**overrides, "base": own})
        return dict(common, objective=e.objective,
                    overrides=combine(overrides, pretrained_encoders(out, e.objective)))
    runs = [make_run("02_heads", e.name, parameters(e), runs_dir, e) for e in grid if e.name not in repeats]
    return grid, repeats, runs


def heads_stage(grid, repeats, runs, timeout, log, desc, executor=None):
    """Run the grid's 02_heads runs, ω̄ (every actv run) first, for the other heads start from
    it; returns ({name: run}, [(experiment, its run)], the experiments' summaries), a run that
    stands for another table's cell (twins) read as that cell."""
    for part, runs_of in (("ω̄", True), ("heads", False)):
        run_all([r for r in runs if (r.experiment.head == "actv") == runs_of], timeout, log,
                f"{desc} ({part})", executor)
    by_name = {r.name: r for r in runs}
    entries = [(e, by_name[repeats[e.name].name if e.name in repeats else e.name]) for e in grid]
    summaries = [failed_summary(r, e) if not r.result.is_file()
                 else load_summaries([{"path": r.result, "experiment": e.name, "table": e.table}])[0]
                 for e, r in entries]
    return by_name, entries, summaries


def sensitivity_stage(params, common, overrides, grid, frame, linearization_path, executor, log):
    """sensitivity.csv's frame: each claim's deciding cells (sensitivity.deciding_cells) trained
    again under each perturbation of reproduce.sensitivity (after a pre-training of its own where
    it needs one), the grid's frame with them substituted judged by the same rules. Its runs go
    to <out_dir>/sensitivity/<perturbation>/ and resume as every stage's do."""
    from .claims import verdicts
    linearization = json.loads(Path(linearization_path).read_text()) if linearization_path else None
    claims = verdicts(frame, linearization)
    decided = sensitivity.deciding_cells(claims)
    cells = set().union(*decided.values())
    chosen = sensitivity.stage_experiments(grid, cells, params["pretrain"]["objective"])
    rows = []
    for perturbation in sensitivity.perturbations(params) if chosen else ():
        perturbed = perturbed_runs(params, common, overrides, chosen, perturbation, executor, log)
        if perturbed is None:
            log(f"sensitivity ({perturbation.label}): its pre-training did not finish; skipped")
            continue
        under = verdicts(sensitivity.substituted(frame, perturbed), linearization)
        rows.append(sensitivity.perturbed_verdicts(decided, perturbation.label, under))
    return pd.concat(rows, ignore_index=True) if rows else pd.DataFrame(columns=sensitivity.COLUMNS)


def perturbed_runs(params, common, overrides, chosen, perturbation, executor, log):
    """The results frame of the experiments `chosen` trained under `perturbation`, in
    <out_dir>/sensitivity/<its slug>/ (on a pre-training of its own where it needs one), or None
    while that pre-training has not finished."""
    folder = Path(params["out_dir"]) / "sensitivity" / perturbation.slug
    own = combine(overrides, {"out_dir": str(folder)})
    if perturbation.pretraining is not None:
        encoders = perturbed_base(params, common, own, perturbation, executor, folder / "runs", log)
        if encoders is None:
            return None
        own = combine(own, encoders)
    stage_grid = [sensitivity.applied(e, perturbation) for e in chosen]
    _, repeats, runs = experiment_runs(params, common, own, folder / "runs", stage_grid)
    _, _, summaries = heads_stage(stage_grid, repeats, runs, params["reproduce"]["timeout"], log,
                                  f"sensitivity ({perturbation.label})",
                                  stage_executor(executor, params, "heads", folder / "runs"))
    return results_frame(summaries)


def perturbed_base(params, common, overrides, perturbation, executor, runs_dir, log):
    """The base.* overrides that put a perturbation's heads on its own pre-training: the
    committed encoder reproduce.sensitivity names, or one pre-trained here (no snapshots), or
    None while that pre-training has not finished."""
    if perturbation.checkpoint:
        return {"base": {"checkpoint": perturbation.checkpoint,
                         "checkpoint_sha256": perturbation.checkpoint_sha256}}
    again = combine(combine(overrides, perturbation.pretraining), {"pretrain": {"snapshots": []}})
    run = pretraining_run(params, common, again, executor, runs_dir)
    if not pretrain_until_done(run, params["reproduce"]["timeout"], log,
                               stage_executor(executor, params, "pretrain", runs_dir),
                               f"sensitivity ({perturbation.label}): pre-training"):
        return None
    return pretrained_encoders(overrides["out_dir"], params["pretrain"]["objective"])


def pretrain_until_done(run, timeout, log, stage, desc="pre-training"):
    """Run a pre-training, and again while it stops at its time budget having made progress
    (each call resumes from its checkpoint); whether it finished. desc: what the log calls it."""
    run_all([run], timeout, log, desc, stage)
    while (progress := in_progress(run)) and not run.result.is_file():
        log(f"{desc}: in progress ({progress}): starting it again, it resumes")
        run_all([run], timeout, log, desc, stage)
        if in_progress(run) == progress:  # no update made: do not loop for ever
            break
    return run.result.is_file()


def linearization_run(params, common, overrides, by_name, runs_dir):
    """The 03_linearization run on Table 3's full and fine-tuning runs (by_name: runs by name)."""
    top = heads_layers(params)
    heads = {h: by_name[f"t{tables(params)[0]}-{h}-{top}"].result for h in ("full", "finetune")}
    return make_run("03_linearization", "linearization", dict(common, overrides=overrides), runs_dir,
                    reads={f"{h}_result": str(path) for h, path in heads.items()})


def run_keys(profile, sets=(), objective=None):
    """{run name: key} of every run of a profile whose base network is known (a committed
    encoder, or base.checkpoint set): what tests/test_reproduce.py compares across code edits."""
    params = load_params(profile, sets, objective=objective)
    common, overrides = dict(profile=profile, objective=params["pretrain"]["objective"]), assignments(sets)
    _, _, runs = experiment_runs(params, common, overrides, Path(params["out_dir"]) / "runs")
    lin = linearization_run(params, common, overrides, {r.name: r for r in runs}, runs[0].runs_dir)
    return {r.name: r.key for r in [*runs, lin]}


def dry_run(profile, sets=(), objective=None, executor="local", log=print, tflops=None):
    """reproduce --dry-run: the grid, which of its runs are done, and plan.estimate's time per
    stage, peak device memory and cache disk for the detected device (tflops: time counted for
    a device of that many TFLOP/s instead). Runs nothing."""
    from .plan import estimate, print_estimate
    params = load_params(profile, sets, objective=objective)
    objective, out = params["pretrain"]["objective"], Path(params["out_dir"])
    common, keyed = dict(profile=profile, objective=objective), notebook_overrides(sets, out)
    done = {}
    pre = other_pretrainings(params, common, keyed, executor, out / "runs", sets)
    if base_network(params)["source"] == "pre-trained in this run":
        pre.insert(0, pretraining_run(params, common, keyed, executor, out / "runs"))
        keyed = combine(keyed, pretrained_encoders(out, objective))
    done.update({r.name: r.result.is_file() for r in pre})
    if all(done.values()):  # the runs after pre-training are keyed by its encoders: none before
        _, _, runs = experiment_runs(params, common, keyed, out / "runs")
        done.update({r.name: r.result.is_file() for r in runs})
    result = estimate(profile, sets, objective, done, tflops)
    print_estimate(profile, result, log)
    return result


def reproduce(profile, sets=(), objective=None, log=None, executor="local"):
    """Pre-train (unless the profile names a committed encoder), run the grid, check the
    linearisation, write results.csv and report.html. executor: local (one notebook after
    another here), slurm or debug (each stage a submitit job array: gradfeat_core.suite.cluster)."""
    log = log or (lambda msg: print(msg, file=sys.stderr))
    os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    params = load_params(profile, sets, objective=objective)
    objective = params["pretrain"]["objective"]
    out = Path(params["out_dir"])
    runs_dir, timeout = out / "runs", params["reproduce"]["timeout"]
    common = dict(profile=profile, objective=objective)
    overrides = notebook_overrides(sets, out)
    started = time.perf_counter()

    summaries, runs, entries, lin_path = [], [], [], None
    base = base_network(params)
    pretrainings = other_pretrainings(params, common, overrides, executor, runs_dir, sets)
    _check_imported(params, profile, sets)
    if base["source"] == "imported":
        log(f"pre-training: none, the profile's base network is {objective}'s imported weights {base['path']}")
    elif base["source"] == "committed":
        log(f"pre-training: none, the profile's base network is the committed {base['path']} "
            "(sha256 checked); --set base.checkpoint=null pre-trains one from scratch instead")
    else:
        pretrainings.insert(0, pretraining_run(params, common, overrides, executor, runs_dir))
        encoders = out / "pretrain" / objective
        overrides = combine(overrides, pretrained_encoders(out, objective))
        base = dict(base, path=str(encoders / "encoder.pt"), pretrain_json=str(encoders / "pretrain.json"))
    stage = stage_executor(executor, params, "pretrain", runs_dir) if pretrainings else None
    for pretrain_run in pretrainings:
        pretrain_until_done(pretrain_run, timeout, log, stage)
    if all(r.result.is_file() for r in pretrainings):
        base["sha256"] = file_sha256(base["path"])
        grid, repeats, runs = experiment_runs(params, common, overrides, runs_dir)
        if repeats:
            log(f"experiments: {len(repeats)} of Table 1's cells are Table 3's runs (one protocol)")
        by_name, entries, summaries = heads_stage(grid, repeats, runs, timeout, log, "experiments",
                                                  stage_executor(executor, params, "heads", runs_dir))
        lin = linearization_run(params, common, overrides, by_name, runs_dir)
        if all(Path(path).is_file() for path in lin.record.reads.values()):
            run_all([lin], timeout, log, "linearisation",
                    stage_executor(executor, params, "linearization", runs_dir))
            lin_path = lin.result if lin.result.is_file() else None
    frame = results_frame(summaries)
    frame.to_csv(out / "results.csv", index=False)
    if len(frame) and (frame.status == "done").all():
        sensitivity_stage(params, common, overrides, grid, frame, lin_path, executor, log).to_csv(
            out / "sensitivity.csv", index=False)
    write_report_inputs(out, profile, params, base, entries, lin_path, time.perf_counter() - started)
    report(out, profile, log)
    frame.attrs["report"] = str(out / "report.html")  # where this run's report went (out_dir's)
    return frame


def _check_imported(params, profile, sets):
    """Each of the paper's networks the profile runs on (its own base network, reproduce.other_bases)
    that is imported, not pre-trained here, has its weights' file: else one line naming the
    command that writes it."""
    objective = params["pretrain"]["objective"]
    for name in (objective, *params["reproduce"]["other_bases"]):
        if not OBJECTIVES[name].imported:
            continue
        path = (params if name == objective else load_params(profile, sets, objective=name))["base"]["checkpoint"]
        if not Path(path).is_file():
            raise ParamError(f"'base.checkpoint' {path}, {name}'s weights, does not exist: "
                             f"{IMPORT[name]} writes it (docs/tables-2-and-4.md)")


def write_report_inputs(out, profile, params, base, entries, lin_path, seconds):
    """out/report-inputs.json: what the report reads (render.Report.load): the parameters, the
    base network and its pre-training record, the other base networks' records, each
    experiment's result file (entries: (Experiment, Run)), the linearisation's, and the seconds
    this call of reproduce took."""
    write_json(out / "report-inputs.json", {
        "profile": profile, "objective": params["pretrain"]["objective"], "params": params,
        "pretrain": base["pretrain_json"] if base.get("sha256") else None, "base_network": base,
        "other_pretrainings": [str(path) for path in (out / "pretrain" / o / "pretrain.json"
                                                      for o in params["reproduce"]["other_bases"]) if path.is_file()],
        "experiments": [{"path": str(r.result), "experiment": e.name, "table": e.table}
                        for e, r in entries if r.result.is_file()],
        "linearization": str(lin_path) if lin_path else None,
        "seconds_this_call": seconds})


def report(out, profile, log):
    """04_report into report.ipynb, then report.html without code cells."""
    from nbconvert import HTMLExporter
    source = NOTEBOOKS / "04_report.ipynb"
    executed = Path(out) / "report.ipynb"
    parameters = {"report_dir": str(out), "profile": profile}
    check_parameters(source, parameters)
    error = papermill(source, executed, parameters)
    if error:
        raise ReportError(f"04_report failed ({error}); the executed notebook is {executed}")
    exporter = HTMLExporter(extra_template_basedirs=[str(TEMPLATES)], template_name="offline",
                            exclude_input=True, exclude_input_prompt=True, exclude_output_prompt=True)
    import nbformat
    notebook = nbformat.read(executed, as_version=4)
    dataset = json.loads((Path(out) / "report-inputs.json").read_text())["params"]["data"]["dataset"]
    notebook.metadata["title"] = (f"Gradients as Features (Mu, Liang & Li, ICLR 2020): a "
                                  f"reproduction on {dataset} (profile {profile})")
    html, _ = exporter.from_notebook_node(notebook)
    (Path(out) / "report.html").write_text(html)
    log(f"report: {Path(out) / 'report.html'}")


def report_dir_for(profile, report_dir=None):
    """The out_dir of a reproduce run to report on: report_dir (relative to the repository
    root) or the profile's own (reports/<profile>). A report never starts a reproduction: with
    no run there, one line says which command makes it."""
    path = Path(report_dir) if report_dir else Path(load_params(profile)["out_dir"])
    path = path if path.is_absolute() else ROOT / path
    if not (path / "report-inputs.json").is_file():
        command = f"python -m gradfeat_core reproduce --profile {profile}"
        command += f" --set out_dir={path}" if report_dir else ""
        raise UserError(f"no reproduce run to report on in {path} (its report-inputs.json is "
                        f"missing): `{command}` makes one, then renders its report")
    return path
