"""results/table4.md and table5.md: the ablation studies (Table 4: CREATE's loss terms;
Table 5: its backbones), each point beside the paper's value with its verdict."""

from __future__ import annotations

import math

import pandas as pd
from tabulate import tabulate

from recbench.protocol.verdicts import Rules
from recbench.reporting.common import (PAPER_METRIC, compared, published, reading_lines,
                                       verdict_lines)


TABLE4_METRICS = ("ndcg@10", "coverage@10", "ndcg@100", "coverage@100")

TABLE5_METRICS = ("ndcg@10", "recall@10")


def _header(title: str, summary: pd.DataFrame) -> list[str]:
    seeds = ", ".join(map(str, sorted(set(summary.n_seeds)))) or "-"
    return [f"# {title}", "",
            "Each cell: mean ± 95% confidence half-width over seeds (Student t; seeds per cell: "
            f"{seeds}), then the paper's published value in [brackets] where one exists, with "
            "the verdict against it.", ""]


STUDY_READING = (", and every point of this study starts from it (the chosen reading's tuned "
                 "parameters, with the point's own keys set)")


def render_table4(summary: pd.DataFrame, points: dict[str, list], paper_names: dict,
                  rules: Rules = Rules(), readings: dict | None = None) -> str:
    """Alignment ablation: sequential only, then each graph encoder x alignment (Table 4).

    ``points``: dataset -> [(label, values)] from the study, values holding ``graph_backbone``
    and ``alignment`` for the CREATE variants and nothing for the sequential-only row.
    """
    paper = published("table4_alignment.csv")
    lines = _header("Table 4: alignment ablation (values in %)", summary)
    lines[-1:-1] = reading_lines(readings, points, STUDY_READING)
    table, verdicts = [], []
    for dataset, pts in points.items():
        for label, values in pts:
            graph = values.get("graph_backbone", "Sequential")
            align = values.get("alignment", "-")
            ref = paper[(paper.dataset == paper_names.get(dataset)) & (paper.graph_encoder == graph)
                        & (paper.alignment.str.lower() == str(align).lower())]
            row = [dataset, graph if values else f"Sequential ({label})",
                   "-" if not values else align]
            for metric in TABLE4_METRICS:
                paper_value = float(ref[PAPER_METRIC[metric]].iloc[0]) if len(ref) else math.nan
                row.append(compared(summary, dataset, metric, label, paper_value, verdicts,
                                     rules=rules))
            row.append(f"`{label}`")
            table.append(row)
    headers = ["Dataset", "Graph encoder", "Alignment", "NDCG@10", "Cov@10", "NDCG@100",
               "Cov@100", "Job label"]
    lines.append(tabulate(table, headers=headers, tablefmt="github"))
    lines += verdict_lines(verdicts, rules)
    lines += ["", "Published numbers: arXiv 2602.23471, Table 4 (Sports and Clothing; "
              "recbench/published/table4_alignment.csv)."]
    return "\n".join(lines) + "\n"


def render_table5(summary: pd.DataFrame, points: dict[str, list], paper_names: dict | None = None,
                  rules: Rules = Rules(), readings: dict | None = None) -> str:
    """Backbone grid: {SASRec, BERT4Rec} rows x {LightGCN, UltraGCN} columns (Table 5).

    The paper does not name Table 5's dataset: its values stand beside every dataset, and a
    verdict is given beside each of the paper's datasets (``paper_names``) only, as if it were
    Table 5's."""
    paper = published("table5_backbones.csv")
    paper_names = paper_names or {}
    lines = _header("Table 5: sequential x graph backbones (values in %)", summary)
    lines[-2] += (" The paper does not name the dataset of its Table 5, so its values are "
                  "repeated beside every dataset here; a verdict stands beside the paper's own "
                  "datasets only, and reads as if Table 5 were measured on that dataset.")
    lines[-1:-1] = reading_lines(readings, points, STUDY_READING)
    table, graphs, verdicts = [], [], []
    for dataset, pts in points.items():
        grid = {(v["sequential_backbone"], v["graph_backbone"]): label for label, v in pts}
        graphs = list(dict.fromkeys(g for _, g in grid))
        judged = verdicts if paper_names.get(dataset) else None
        for seq in dict.fromkeys(s for s, _ in grid):
            for metric in TABLE5_METRICS:
                ref = paper[(paper.sequential_backbone == seq) & (paper.metric == PAPER_METRIC[metric])]
                row = [dataset, seq, PAPER_METRIC[metric]]
                for graph in graphs:
                    paper_value = float(ref[graph].iloc[0]) if len(ref) and graph in ref else math.nan
                    label = grid.get((seq, graph))
                    row.append(compared(summary, dataset, metric, label, paper_value, judged,
                                         rules=rules) if label else "")
                table.append(row)
    lines.append(tabulate(table, headers=["Dataset", "Sequential", "Metric", *graphs],
                          tablefmt="github"))
    lines += verdict_lines(verdicts, rules)
    lines += ["", "Published numbers: arXiv 2602.23471, Table 5 "
              "(recbench/published/table5_backbones.csv)."]
    return "\n".join(lines) + "\n"
