"""results/table3.md: Table 3, SASRec and CREATE in the LOOM protocol (leave-one-out after a
5-core filter) beside the paper's numbers and the methods it quotes."""

from __future__ import annotations

import math

import pandas as pd
from tabulate import tabulate

from recbench.protocol.verdicts import Rules
from recbench.reporting.common import (PAPER_CLAIMS, PAPER_METRIC, compared, published,
                                       reading_lines, verdict_lines)


TABLE3_METRICS = {"recall@10": "HR@10", "ndcg@10": "NDCG@10"}  # HR@10 = Recall@10: one target


QUOTED = ("GSAU", "Self-GNN", "LOOM")


def render_table3(summary: pd.DataFrame, datasets: dict[str, str], bridge: dict[str, str],
                  models: list[str], rules: Rules = Rules(), readings: dict | None = None) -> str:
    """Table 3: our SASRec and CREATE in the LOOM protocol beside GSAU, Self-GNN and LOOM, which
    are quoted from the paper (not run here); SASRec in our own protocol as the bridge.

    ``datasets``: the paper's dataset name -> our LOOM-protocol dataset; ``bridge``: that
    dataset -> the same data in the paper's own protocol.
    """
    paper = published("table3_loom_setup.csv")
    table2 = published("table2.csv")
    baseline = PAPER_CLAIMS["baseline"]
    lines = ["# Table 3: the LOOM evaluation setup (values in %)", "",
             "Computed here (mean ± 95% CI over seeds, the paper's value in [brackets] with the "
             "verdict against it): "
             + ", ".join(models) + " in the LOOM protocol (leave-one-out, 5-core, full ranking; "
             "see the README, \"Table 3: the LOOM protocol\"). Quoted from the paper, not run "
             "here: " + ", ".join(f"{m} (quoted)" for m in QUOTED) + f". The bridge column is "
             f"{baseline} in the paper's own protocol (global temporal split, Table 2) on the "
             "same data."]
    lines += reading_lines(readings, datasets.values(), " (in the LOOM protocol its own validation "
                           "users: the held-out item before each test item)") + [""]
    headers = ["Dataset", "Metric", *(f"{m} (quoted)" for m in QUOTED),
               *(f"{m} (ours, LOOM setup)" for m in models), f"{baseline} (ours, own setup)"]
    table, verdicts = [], []
    # rows in the paper's order of its datasets, then by name: a mapping's key order is no value
    order = list(dict.fromkeys(paper.dataset))
    for paper_name, dataset in sorted(datasets.items(), key=lambda kv: (
            order.index(kv[0]) if kv[0] in order else len(order), kv[0])):
        for metric, label in TABLE3_METRICS.items():
            row = [f"{paper_name} ({dataset})", label]
            ref = paper[(paper.dataset == paper_name) & (paper.metric == label)].set_index("model")
            row += [f"{ref.value_pct[m]:.2f} (quoted)" if m in ref.index else "n/a" for m in QUOTED]
            for model in models:
                paper_value = float(ref.value_pct[model]) if model in ref.index else math.nan
                row.append(compared(summary, dataset, metric, model, paper_value, verdicts,
                                     rules=rules))
            own = bridge.get(dataset)
            if own:
                t2 = table2[(table2.dataset == paper_name) & (table2.model == baseline)
                            & (table2.metric == PAPER_METRIC[metric])]
                value, pm = ((float(t2.value_pct.iloc[0]), float(t2.plusminus_pct.iloc[0]))
                             if len(t2) else (math.nan, 0.0))
                row.append(compared(summary, own, metric, baseline, value, verdicts, pm, rules))
            else:
                row.append("")
            table.append(row)
    lines.append(tabulate(table, headers=headers, tablefmt="github"))
    lines += verdict_lines(verdicts, rules)
    lines += ["", "HR@10 is Recall@10 here (one held-out item per user). Published numbers: "
              "arXiv 2602.23471, Table 3 (recbench/published/table3_loom_setup.csv) and, for the "
              "bridge, Table 2."]
    return "\n".join(lines) + "\n"
