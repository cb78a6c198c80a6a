"""CREATE's open readings chosen per dataset on validation: the protocol's first step.

The paper has no public code, so every point it leaves open is a named option
(``create_model/readings.py``), and which bundle of options is CREATE is a guess. The paper tuned
CREATE per dataset; a reproduction can do the same honestly only for its guesses by letting each
dataset's own validation choose among a set declared in advance, never the test split, and by
saying which one it chose. A model entry of the config declares that set::

    models:
      CREATE:
        params: {...}                      # the configured reading
        readings:
          select: validation               # none: the params as written, no selection jobs
          candidates:                      # name -> dotted-key overrides of params, in order
            configured_LightGCN: {graph_backbone: LightGCN}
            predecessor_LightGCN: {graph_schedule: sequential, ..., graph_backbone: LightGCN}

For each dataset the workflow then runs

1. one job per candidate (rule ``reading_fit``): one fit of ``params`` with the candidate's
   overrides on the validation split, at the tuning budget (the params' ``epochs`` and
   ``patience``), with the tuning seed and early stopping on validation NDCG@10, exactly a tuning
   study's trial 0 (``recbench.protocol.runner.validate_params``). Its inputs are the training and
   validation files of the split, never the test file;
2. one selection job (rule ``select_reading``, ``pick``): the candidate with the best
   validation NDCG@10 of the configured protocol, ties broken by the candidates' order; its
   inputs are the candidates' records alone;
3. the model's usual tuning study of the chosen bundle (rule ``tune``: the params with the
   winner's overrides; its trial 0, the winner's own fit, is reused rather than repeated) and the
   final fits over the seeds, as for any model.

Adding or changing a candidate reruns its job and the selection; the tuning study and what
follows rerun only when the choice (its name, overrides or validation score) changes.
"""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

from recbench.errors import ConfigError, TrainingError
from recbench.io import write_json

#: the values of ``readings.select``
SELECT = ("validation", "none")
#: a candidate's folder (rule reading_fit): its record beside the fit's own files
RECORD = "record.json"
#: the selection's folder (rule select_reading): the choice, and the winner's fit files
CHOICE = "reading.json"
WINNER = "winner"


def selection(config: dict, model: str) -> dict[str, dict] | None:
    """The candidates (name -> overrides, in order) of a model label that selects its reading
    on validation; None for one that does not (no ``readings:``, ``select: none``, or an
    ablation variant, which starts from its base's tuned, already chosen, parameters)."""
    if "~" in model or model not in config["models"]:
        return None
    spec = (config["models"][model] or {}).get("readings")
    if not spec or spec.get("select", "validation") == "none":
        return None
    return {name: dict(over or {}) for name, over in (spec.get("candidates") or {}).items()}


def candidate_keys(config: dict, model: str) -> set[str]:
    """Every dotted key some candidate of ``model`` sets: an ablation point must keep such a key
    in its label even where it equals the config's value, since the chosen reading may differ."""
    return {key for over in (selection(config, model) or {}).values() for key in over}


def check(config: dict, model: str) -> None:
    """What config/schema.yaml cannot check of a ``readings:`` entry (it checks ``select`` and
    the candidates' names and form)."""
    spec = (config["models"][model] or {}).get("readings")
    if spec and spec.get("select", "validation") == "validation" and not spec.get("candidates"):
        raise ConfigError(f"models.{model}.readings.candidates: selection on validation needs at "
                          "least one candidate (name -> overrides); or set `select: none`.")


def pick(records: list[dict]) -> dict:
    """The winning record of a selection: the highest validation NDCG@10, ties broken by the
    candidates' order (the order of ``records``). A failed candidate (no value) cannot win; if
    every candidate failed the selection fails, naming their errors."""
    ok = [r for r in records if r.get("value") is not None and math.isfinite(r["value"])]
    if not ok:
        raise TrainingError("every reading candidate failed: "
                            + "; ".join(f"{r['candidate']}: {r.get('error')}" for r in records))
    best = max(r["value"] for r in ok)
    return next(r for r in ok if r["value"] == best)


def choice_record(dataset: str, model: str, records: list[dict], protocol: str) -> dict:
    """What the selection job writes (``reading.json``): the winner and every candidate."""
    winner = pick(records)
    return {
        "dataset": dataset, "model": model, "select": "validation", "protocol": protocol,
        "chosen": winner["candidate"], "overrides": winner["overrides"],
        "value": winner["value"], "params": winner["params"], "facts": winner.get("facts", {}),
        "n_candidates": len(records),
        "candidates": [{
            "candidate": r["candidate"], "overrides": r["overrides"], "value": r.get("value"),
            "recall@10": (r.get("facts", {}).get("valid_metrics") or {}).get("recall@10"),
            "best_epoch": r.get("facts", {}).get("best_epoch"),
            "epochs_trained": r.get("facts", {}).get("epochs_trained"),
            "seconds": r.get("seconds"), "error": r.get("error"),
            "chosen": r["candidate"] == winner["candidate"]} for r in records],
    }


def write_choice(folder: str | Path, record: dict, winner_files: str | Path) -> None:
    """The selection job's output folder: ``reading.json`` and a copy of the winner's fit files
    (its history.csv), which the tuning study reuses as its trial 0."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copytree(winner_files, folder / WINNER, ignore=shutil.ignore_patterns(RECORD))
    write_json(record, folder / CHOICE)  # last: marks a complete selection


def read_choice(folder: str | Path) -> dict:
    path = Path(folder) / CHOICE
    if not path.exists():
        raise TrainingError(f"{path} is missing: the reading selection did not finish; rerun "
                            "its rule (select_reading).")
    return json.loads(path.read_text())


def choice_param(folder: str | Path) -> dict:
    """What the tuning study depends on (a Snakemake param, passed through
    ``recbench.canonical``): the chosen name, its overrides and its validation score."""
    record = read_choice(folder)
    return {k: record[k] for k in ("chosen", "overrides", "value")}


def same_params(a: dict, b: dict) -> bool:
    """Equal parameters once both are as JSON stores them (tuples as lists, keys sorted)."""
    return json.dumps(a, sort_keys=True) == json.dumps(b, sort_keys=True)


def chosen_by_dataset(folders: list[str | Path]) -> dict[str, dict[str, dict]]:
    """dataset -> model -> the selection record, for the reports."""
    out: dict[str, dict[str, dict]] = {}
    for folder in folders:
        record = read_choice(folder)
        out.setdefault(record["dataset"], {})[record["model"]] = record
    return out


def describe(record: dict) -> str:
    """One phrase a report says of a choice: ``predecessor_LightGCN`` (validation NDCG@10 36.37 %,
    best of 4 candidates chosen on validation; next: configured_LightGCN 27.93 %)."""
    others = sorted((c for c in record["candidates"] if not c["chosen"] and c["value"] is not None),
                    key=lambda c: -c["value"])
    runner_up = (f"; next: {others[0]['candidate']} {100 * others[0]['value']:.2f} %"
                 if others else "")
    return (f"`{record['chosen']}` (validation NDCG@10 {100 * record['value']:.2f} %, best of "
            f"{record['n_candidates']} candidates{runner_up})")
