"""results/reading_selection.md and .csv: the candidates each dataset's validation chose among
(recbench/protocol/reading_selection.py), every candidate's validation numbers, the winner in bold."""

from __future__ import annotations

import json

import pandas as pd
from tabulate import tabulate

from recbench.protocol.studies import format_value


SELECTION_COLUMNS = ["dataset", "model", "candidate", "chosen", "valid_ndcg@10_pct",
                     "valid_recall@10_pct", "best_epoch", "epochs_trained", "seconds", "error",
                     "overrides"]


def selection_frame(records: list[dict]) -> pd.DataFrame:
    """One row per (dataset, model, candidate) of the selection records
    (recbench/protocol/reading_selection.py), in the candidates' order."""
    rows = []
    for r in records:
        for c in r["candidates"]:
            pct = (lambda v: None if v is None else 100 * v)
            rows.append({"dataset": r["dataset"], "model": r["model"], "candidate": c["candidate"],
                         "chosen": c["chosen"], "valid_ndcg@10_pct": pct(c["value"]),
                         "valid_recall@10_pct": pct(c["recall@10"]),
                         "best_epoch": c["best_epoch"], "epochs_trained": c["epochs_trained"],
                         "seconds": c["seconds"], "error": c["error"] or "",
                         "overrides": json.dumps(c["overrides"], sort_keys=True)})
    return pd.DataFrame(rows, columns=SELECTION_COLUMNS)


def _overrides_text(overrides: dict, shown: int = 3) -> str:
    """A candidate's overrides in a table cell: the first few, then how many more (all of them
    are in reading_selection.csv)."""
    items = [f"{k}={format_value(v)}" for k, v in overrides.items()]
    if not items:
        return "(the params as written)"
    more = len(items) - shown
    return ", ".join(items[:shown]) + (f" + {more} more (reading_selection.csv)" if more > 0
                                       else "")


def render_selection(records: list[dict]) -> str:
    """The selection report: per dataset, every candidate's validation numbers, winner marked."""
    lines = ["# Reading selection: each dataset's validation chooses the model's reading", "",
             "Each open point of the paper is a named option (create_model/readings.py); a "
             "candidate is a bundle of them (`models.<model>.readings.candidates`). On each "
             "dataset every candidate is fitted once on the validation split (the log before "
             "the validation cut, scored on the validation users) at the tuning budget, with the "
             "tuning seed and early stopping on validation NDCG@10; the one with the best "
             "validation NDCG@10 is chosen (**bold**; ties: the first candidate), then tuned and "
             "retrained over the seeds as the model of Table 2. No test user is scored before "
             "the choice: the candidate and selection jobs read no test file. Values in %; "
             "`epochs`: the best epoch / epochs trained (CREATE: joint epochs, after its "
             "warm-up); seconds: the fit's wall time."]
    if not records:
        return "\n".join(lines + ["", "No model of this run selects its reading "
                                      "(`readings: {select: validation}`)."]) + "\n"
    for r in records:
        lines += ["", f"## {r['dataset']}: {r['model']} ({r['protocol']} protocol)", ""]
        table = []
        for c in r["candidates"]:
            name = f"**{c['candidate']}**" if c["chosen"] else c["candidate"]
            ndcg = "failed" if c["value"] is None else f"{100 * c['value']:.2f}"
            recall = "" if c["recall@10"] is None else f"{100 * c['recall@10']:.2f}"
            epochs = ("" if c["best_epoch"] is None
                      else f"{c['best_epoch']} / {c['epochs_trained']}")
            seconds = "" if c["seconds"] is None else f"{c['seconds']:.0f}"
            table.append([name, ndcg, recall, epochs, seconds,
                          _overrides_text(c["overrides"])])
        lines.append(tabulate(table, headers=["Candidate", "Valid NDCG@10", "Valid Recall@10",
                                              "Epochs (best / trained)", "Seconds",
                                              "Overrides of the params"],
                              tablefmt="github", disable_numparse=True))
        others = [c for c in r["candidates"] if not c["chosen"] and c["value"] is not None]
        if others:
            best_other = max(others, key=lambda c: c["value"])
            lines += ["", f"Chosen: `{r['chosen']}`, {100 * (r['value'] - best_other['value']):+.2f} "
                      f"points of validation NDCG@10 over the next, `{best_other['candidate']}`. "
                      "One fit per candidate: a margin within the seed-to-seed spread of one "
                      "model is a choice the data does not force."]
    return "\n".join(lines) + "\n"
