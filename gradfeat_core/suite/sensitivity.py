"""The sensitivity stage: each claim's deciding cells trained again under what could flip its
verdict, and whether the verdict survives.

A verdict is only as firm as what could move it. After the grid, `reproduce` takes the cells that
decide each claim (the runs behind its deciding comparison: claims.verdicts' `decided_by`) and
trains them again, all their seeds, under each perturbation of `reproduce.sensitivity`:

- schedule: every head's schedule ×k (iterations, learning-rate steps, the least iterations and
  the patience in evaluations: the same shape, k times as long), to catch a head stopped early;
- pretrain_seed: the base network pre-trained again with another seed (or the committed
  encoder of that pre-training), to put the pre-training's own variation beside the intervals;
- design: a stand-in's main design choice, as parameters over the profile's (the mosaic's side).

Each perturbation's frame is the grid's with the deciding cells' rows replaced by the perturbed
runs' (`substituted`), judged by the same rules; a claim is *robust* when every perturbation gives
its verdict again and *fragile* otherwise, naming the perturbation that flips it and to what.
"""
import dataclasses
from dataclasses import dataclass

import pandas as pd

from ..experiments.params import combine, leaves
from ..method.linear_model import HEADS
from ..method.registry import OBJECTIVES

ROBUST, FRAGILE, NOT_PERTURBED = "robust", "fragile", "not perturbed"
COLUMNS = ["claim", "perturbation", "verdict", "comparison", "effect"]  # sensitivity.csv


@dataclass(frozen=True)
class Perturbation:
    """One thing that could flip a verdict: `heads` go over each perturbed experiment's
    parameters; `pretraining`, when not None, pre-trains its base network again under these
    overrides (or reads `checkpoint`, that pre-training committed, sha256 `checkpoint_sha256`)."""
    name: str                 # its key in reproduce.sensitivity: schedule | pretrain_seed | design
    label: str                # what the report calls it: 'schedule ×2', 'pre-training seed 1'
    heads: dict
    pretraining: dict | None = None
    checkpoint: str | None = None
    checkpoint_sha256: str | None = None

    @property
    def slug(self):
        """Its folder under <out_dir>/sensitivity/."""
        return self.label.replace(" ", "-").replace("×", "x").replace("/", "-").replace(",", "")


def scaled_schedule(train, factor):
    """train.<head> iterations and stepsize, and train.min_iterations and patience, × factor."""
    out = {head: {"iterations": train[head]["iterations"] * factor,
                  "stepsize": train[head]["stepsize"] * factor} for head in HEADS}
    return {"train": dict(out, min_iterations=train["min_iterations"] * factor,
                          patience=train["patience"] * factor)}


def perturbations(params):
    """The perturbations reproduce.sensitivity asks for, in its order (none switched off). An
    imported base network (the paper's weights) is not pre-trained again: no second seed of it
    unless a checkpoint names one, and a design change reaches its heads only."""
    own, out = params["reproduce"]["sensitivity"], []
    imported = OBJECTIVES[params["pretrain"]["objective"]].imported
    if own["schedule"]:
        out.append(Perturbation("schedule", f"schedule ×{own['schedule']:g}",
                                scaled_schedule(params["train"], own["schedule"])))
    if own["pretrain_seed"] is not None and (own["checkpoint"] or not imported):
        out.append(Perturbation("pretrain_seed", f"pre-training seed {own['pretrain_seed']}", {},
                                {"seed": own["pretrain_seed"]}, own["checkpoint"], own["checkpoint_sha256"]))
    if own["design"]:
        changed = ", ".join(f"{k} {v}" for k, v in leaves(own["design"]))
        again = own["design"] if _reaches_pretraining(own["design"]) and not imported else None
        out.append(Perturbation("design", changed, own["design"], again))
    return out


def _reaches_pretraining(overrides):
    """Whether a design change concerns the base network's pre-training too (its data or the
    base network), not the heads alone."""
    return any(section in overrides for section in ("data", "base", "pretrain"))


def deciding_cells(claims):
    """{claim: the Cells behind its deciding comparison} from claims.verdicts' `decided_by_runs`
    (a list of (Cell, seed) per claim); claims decided by no runs (C7's linearisation check)
    are left out."""
    out = {}
    for row in claims.itertuples():
        cells = {cell for cell, _ in (row.decided_by_runs or ())}
        if cells:
            out[row.claim] = cells
    return out


def matches(experiment, cell, own_objective):
    """Whether a grid Experiment trains `cell` (its table, head, depth, sources and base network)."""
    if (experiment.table, experiment.head, experiment.layers, experiment.sources) != \
            (cell.table, cell.head, cell.layers, cell.sources):
        return False
    if cell.encoder in ("pretrained", "random"):
        return experiment.encoder == cell.encoder and not experiment.objective
    return (experiment.objective or own_objective) == cell.encoder and experiment.encoder == "pretrained"


def stage_experiments(grid, cells, own_objective):
    """The grid's experiments that train any of `cells`, plus the actv experiment of each table
    and base network among them (its ω̄ starts every other head), in the grid's order."""
    chosen = [e for e in grid if any(matches(e, c, own_objective) for c in cells)]
    bases = {(e.table, e.encoder, e.objective) for e in chosen}
    actv = [e for e in grid if e.head == "actv" and (e.table, e.encoder, e.objective) in bases]
    return [e for e in grid if e in chosen or e in actv]


def applied(experiment, perturbation):
    """The experiment as the perturbation trains it: its parameters over the experiment's own."""
    return dataclasses.replace(experiment, protocol=combine(experiment.protocol, perturbation.heads))


def substituted(frame, perturbed):
    """The grid's frame with every cell the perturbed frame has replaced by the perturbed rows."""
    keys = ["table", "head", "layers", "theta1", "theta2", "omega", "base"]
    replaced = frame.merge(perturbed[keys].drop_duplicates(), on=keys, how="left", indicator=True)
    kept = frame[(replaced["_merge"] == "left_only").to_numpy()]
    return pd.concat([kept, perturbed], ignore_index=True)


def outcomes(claims, under):
    """One row per claim: its verdict, each perturbation's verdict by the same rule, and the
    outcome: robust (the same under every perturbation), fragile (which flips it, and to what),
    or not perturbed (no runs decide it, or no perturbation ran). under: sensitivity.csv's long
    frame (claim, perturbation, verdict, ...) of the claims' deciding cells perturbed."""
    under, rows = under.reindex(columns=COLUMNS), []
    for row in claims.itertuples():
        mine = under[under.claim == row.claim]
        perturbed = dict(zip(mine.perturbation, mine.verdict))
        flips = {label: verdict for label, verdict in perturbed.items() if verdict != row.verdict}
        outcome = (NOT_PERTURBED if not perturbed else ROBUST if not flips else
                   f"{FRAGILE}: " + "; ".join(f"{label} → {verdict}" for label, verdict in flips.items()))
        rows.append({"claim": row.claim, "verdict": row.verdict, **perturbed, "outcome": outcome})
    return pd.DataFrame(rows)


def perturbed_verdicts(decided, label, verdicts_under):
    """sensitivity.csv's rows of one perturbation: for each claim in `decided` (deciding_cells:
    the claims whose deciding cells it retrained), the verdict, the deciding comparison and its
    effect on the substituted frame."""
    v = verdicts_under[verdicts_under.claim.isin(decided)]
    return pd.DataFrame({"claim": v.claim, "perturbation": label, "verdict": v.verdict,
                         "comparison": v.comparison, "effect": v.effect}, columns=COLUMNS)

