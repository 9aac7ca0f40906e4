"""`reproduce --executor slurm` (or `debug`): each stage's notebooks as one submitit job array,
one notebook per array task; the next stage's array is submitted once this one has finished.

Nothing here schedules or polls: submitit (https://github.com/facebookincubator/submitit)
submits the array with sbatch and waits on SLURM's accounting. Each task runs
`reproduce.execute`, so done / failed / skipped mean what they mean in a local run: a run is
done when its result JSON exists, a failed notebook leaves <name>-<key>.failed.json with its
error, and a task that dies outside the notebook (time limit, memory, node) is recorded the
same way from submitit's error. Job logs: runs/jobs/<job id>_<task>_log.{out,err}, beside the
executed notebooks. Ctrl-C cancels every job of the array it was waiting on.

`debug` is submitit's in-process executor: the same submission path without a cluster (the
tests use it).
"""
from pathlib import Path

EXECUTORS = ("local", "slurm", "debug")  # local: reproduce's own loop, one notebook after another


def sbatch_options(options):
    """['--qos=high', '--account=abc', '--exclusive'] -> {'qos': 'high', 'account': 'abc',
    'exclusive': True}: submitit's slurm_additional_parameters."""
    out = {}
    for option in options:
        name, _, value = option.removeprefix("--").partition("=")
        out[name.replace("-", "_")] = value if value else True
    return out


def executor(kind, folder, resources, name):
    """A submitit executor for one stage: `resources` is reproduce.slurm.<stage> (gpus, cpus,
    mem_gb, time_min, partition, sbatch) plus reproduce.slurm.array_parallelism."""
    import submitit
    ex = submitit.AutoExecutor(folder=Path(folder), cluster=kind)
    ex.update_parameters(name=name, timeout_min=resources["time_min"], mem_gb=resources["mem_gb"],
                         cpus_per_task=resources["cpus"], gpus_per_node=resources["gpus"],
                         slurm_partition=resources["partition"] or None,
                         slurm_array_parallelism=resources["array_parallelism"],
                         slurm_additional_parameters=sbatch_options(resources["sbatch"]))
    return ex


def run_array(ex, fn, runs, timeout, log, on_death):
    """fn(run, timeout) for every run as one job array; returns each task's outcome, in order.
    on_death(run, error) records a task that died outside fn; its outcome is then False."""
    jobs = ex.map_array(fn, runs, [timeout] * len(runs))
    log(f"  submitted {len(jobs)} task(s) as job {jobs[0].job_id.split('_')[0]}; "
        f"logs in {ex.folder}")
    outcomes = []
    try:
        for run, job in zip(runs, jobs):
            try:
                outcomes.append(job.result())
            except Exception as e:  # noqa: BLE001 - submitit's errors carry the job's traceback
                lines = [line for line in str(e).splitlines() if line.strip()]
                on_death(run, f"job {job.job_id} died: {lines[-1] if lines else type(e).__name__}")
                outcomes.append(False)
    except KeyboardInterrupt:
        for job in jobs:
            job.cancel(check=False)
        log(f"interrupted: cancelled job {jobs[0].job_id.split('_')[0]} (all its tasks)")
        raise
    return outcomes
