"""A fixed set of per-seed results (two datasets, one of them the paper's ML-1M, a LOOM dataset,
an ablation study) and every report rendered from it, as the report scripts render them.

``tests/recbench/golden/`` holds these reports as rendered before CREATE's reading selection
existed; ``test_reading_selection.py`` checks that a run without selection (``select: none``)
still renders them byte for byte. Regenerate them only for an intended change of the reports:
``python -m tests.recbench.report_fixture tests/recbench/golden``.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd

from recbench.reporting.common import METRICS, add_significance, add_verdicts, collect, per_user_spread, significance, summarise
from recbench.reporting.reproduction import render_reproduction, reproduction_claims
from recbench.reporting.table2 import render_table2
from recbench.reporting.table3 import render_table3
from recbench.reporting.studies import render_table4
from recbench.protocol.verdicts import Rules

PAPER_NAMES = {"ml": "ML-1M", "syn": None, "ml-loom": None}
MODELS = ["SASRec", "LightGCN", "CREATE"]
SHIFT = {"SASRec": 0.0, "LightGCN": -0.02, "CREATE": 0.01, "CREATE~alignment=none": 0.005}
TABLE4 = {"ml": [("SASRec", {}),
                 ("CREATE~alignment=none", {"graph_backbone": "UltraGCN", "alignment": "none"}),
                 ("CREATE", {"graph_backbone": "UltraGCN", "alignment": "barlow"})]}


def write_runs(root: Path) -> dict[str, list[Path]]:
    """metrics.json and per_user.parquet of every (dataset, model, seed), as the runner writes
    them (the configured protocol unfiltered); returns the files of each report."""
    rng = np.random.default_rng(3)
    files: dict[str, list[Path]] = {"table2": [], "table3": [], "table4": []}
    runs = [(d, m) for d in ("ml", "syn") for m in MODELS]
    runs += [("ml-loom", m) for m in ("SASRec", "CREATE")] + [("ml", "CREATE~alignment=none")]
    for dataset, model in runs:
        base = np.random.default_rng(len(dataset)).random(200) * 0.2
        for seed in range(3):
            unfiltered = np.clip(base + SHIFT[model] + rng.normal(0, 0.02, 200), 0, 1)
            filtered = np.clip(unfiltered * 1.3, 0, 1)
            d = root / dataset / model / f"seed{seed}"
            d.mkdir(parents=True)
            metrics = {m: float(unfiltered.mean()) for m in METRICS}
            metrics["history_filtered"] = {m: float(filtered.mean()) for m in METRICS}
            (d / "metrics.json").write_text(json.dumps({**metrics, "protocol": "unfiltered"}))
            frame = pd.DataFrame({"user": range(200), "target": 0, "rank": 0})
            for prefix, values in (("", unfiltered), ("history_filtered/", filtered)):
                for m in ("ndcg@10", "recall@10", "ndcg@100", "recall@100"):
                    frame[prefix + m] = values
            frame.to_parquet(d / "per_user.parquet")
            table = ("table3" if dataset == "ml-loom" else "table4" if "~" in model
                     else "table2")
            files[table].append(d / "metrics.json")
    files["table4"] = [f for f in files["table2"] if f.parts[-4] == "ml" and f.parts[-3] in (
        "SASRec", "CREATE")] + files["table4"]
    files["table3"] += [f for f in files["table2"] if f.parts[-4] == "ml" and f.parts[-3] == (
        "SASRec")]
    return files


def per_user(metric_files):
    return [Path(str(f).replace("metrics.json", "per_user.parquet")) for f in metric_files]


def render_all(root: Path, **readings) -> dict[str, str]:
    """Every report of the fixture as text: Table 2 (md and csv), reproduction.md, Tables 3-4.
    ``readings`` are passed to each renderer (none: as before reading selection existed)."""
    files = write_runs(root)
    rules = Rules()
    t2 = files["table2"]
    summary = add_significance(
        summarise(collect(t2, both=True, configured="unfiltered"), PAPER_NAMES,
                  per_user_spread(per_user(t2), "unfiltered")),
        significance(per_user(t2), "SASRec", configured="unfiltered"))
    summary = add_verdicts(summary, rules)
    out = {"table2.csv": summary.to_csv(index=False),
           "table2.md": render_table2(summary, ["ml", "syn"], MODELS, **readings)}
    claims = reproduction_claims(per_user(t2), summary, PAPER_NAMES, rules)
    again = pd.read_csv(pd.io.common.StringIO(out["table2.csv"]))
    out["reproduction.md"] = render_reproduction(again, ["ml", "syn"], MODELS, claims, rules,
                                                 **readings)
    t3 = summarise(collect(files["table3"]), spread=per_user_spread(per_user(files["table3"])))
    out["table3.md"] = render_table3(t3, {"ML-1M": "ml-loom"}, {"ml-loom": "ml"},
                                     ["SASRec", "CREATE"], rules, **readings)
    t4 = summarise(collect(files["table4"]), spread=per_user_spread(per_user(files["table4"])))
    out["table4.md"] = render_table4(t4, TABLE4, PAPER_NAMES, rules, **readings)
    return out


if __name__ == "__main__":
    import tempfile

    target = Path(sys.argv[1])
    target.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        for name, text in render_all(Path(tmp)).items():
            (target / name).write_text(text)
            print(f"{target / name}: {len(text)} characters")
