"""The paper's numbers (params/paper.yaml) as flat records tagged with table, row and column."""
import yaml

from ..experiments.params import PARAMS_DIR


def paper_numbers(path=None):
    """[{table, row, column, value, ...tags}]: one record per printed number (nulls skipped)."""
    with open(path or PARAMS_DIR / "paper.yaml") as fh:
        tables = yaml.safe_load(fh)
    records = []
    for table, spec in tables.items():
        number = int(table.removeprefix("table"))
        for r, row in enumerate(spec["rows"], start=1):
            tags = {k: v for k, v in row.items() if k != "values"}
            for c, (column, value) in enumerate(zip(spec["columns"], row["values"]), start=1):
                if value is None:
                    continue
                column_tags = column if isinstance(column, dict) else {"dataset": column}
                records.append({"table": number, "row": r, "column": c, "value": value,
                                **({"dataset": spec["dataset"]} if "dataset" in spec else {}),
                                **tags, **column_tags})
        for b in spec.get("baselines", []):
            records.append({"table": number, "row": "baseline", "column": b["layers"],
                            "dataset": spec["dataset"], **b})
    return records
