"""What a saved model costs and how fast it serves: an ML-1M-size SASRec, saved, loaded and asked
for every user's top 10; and the sizes of a finished run's saved models.

    python benchmarks/bench_artefacts.py [--model SASRec] [--batch-size 1024] [--results results]

The log has MovieLens-1M's size (6,040 users, 3,706 items, 1,000,209 interactions, one rating
per (user, item)); the model takes config/paper.yaml's parameters for ml-1m. Its weights are
built, not trained (a saved model's size does not depend on training). ``recommend`` scores all
6,040 users with the batched scorer (one ``score`` call per ``--batch-size`` histories, top-k on
the device), the way the evaluation does. ``--results``: also sum the saved models under
``<results>/<dataset>/<model>/seed*/model`` of a finished run, per model.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import numpy as np
import polars as pl

from benchmarks._common import ML_1M, MiB, synthetic_log
from recbench import artefacts
from recbench.protocol.config import load_validated, model_spec
from recbench.data.dataset import EvalSet, SplitData
from recbench.artefacts import load
from recbench.models import build_model
from recbench.training import TrainResult

ROOT = Path(__file__).resolve().parent.parent


def folder_bytes(folder: Path) -> dict[str, int]:
    return {f.name: f.stat().st_size for f in sorted(folder.iterdir())}


def ml1m_split() -> SplitData:
    """The ML-1M-size log as a split: every user a test user, their whole log the history."""
    train = synthetic_log(*ML_1M, distinct=True)
    offsets, items = train.sequences()
    test = EvalSet(np.arange(train.n_users), offsets, items, np.full(train.n_users, -1),
                   train.n_items)
    return SplitData(train, test, None, None,
                     pl.DataFrame({"item": np.arange(train.n_items) + 1}),
                     pl.DataFrame({"user": np.arange(train.n_users) + 1}), {})


def measure(model_name: str = "SASRec", batch_size: int = 1024) -> dict:
    config = load_validated(ROOT / "config" / "paper.yaml", ROOT / "config" / "schema.yaml")
    cls, params = model_spec(config, "ml-1m", model_name)
    data = ml1m_split()
    model = build_model(cls, params, seed=0)
    model.build(data.train)
    model.train_result = TrainResult(0, 0, None, [])  # untrained: the same size as trained
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "model"
        t0 = time.perf_counter()
        artefacts.save(model, folder, data)
        save_s = time.perf_counter() - t0
        sizes = folder_bytes(folder)
        t0 = time.perf_counter()
        loaded = load(folder)
        load_s = time.perf_counter() - t0
        users = data.user_ids["user"].to_list()
        t0 = time.perf_counter()
        recs = loaded.recommend(users, k=10, batch_size=batch_size, progress=False)
        recommend_s = time.perf_counter() - t0
    return {"model": model_name, "params": params, "log": ML_1M, "files": sizes,
            "bytes": sum(sizes.values()), "save_seconds": save_s, "load_seconds": load_s,
            "users": len(users), "rows": len(recs), "recommend_seconds": recommend_s,
            "batch_size": batch_size}


def run_sizes(results: Path) -> dict[str, dict]:
    """dataset/model -> saved models found, their total and largest size in bytes."""
    found: dict[str, list[int]] = defaultdict(list)
    for meta in sorted(results.glob("*/*/seed*/model/model.json")):
        folder = meta.parent
        key = f"{folder.parents[2].name}/{folder.parents[1].name}"
        found[key].append(sum(f.stat().st_size for f in folder.iterdir()))
    return {k: {"models": len(v), "bytes": sum(v), "largest": max(v)} for k, v in found.items()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="SASRec")
    ap.add_argument("--batch-size", type=int, default=1024)
    ap.add_argument("--results", type=Path, help="a finished run's results/ folder")
    args = ap.parse_args()
    r = measure(args.model, args.batch_size)
    print(f"{r['model']} on an ML-1M-size log ({r['log'][0]:,} users, {r['log'][1]:,} items, "
          f"{r['log'][2]:,} interactions), params {r['params']}")
    print(f"  saved model: {r['bytes'] / MiB:.1f} MiB  (" + ", ".join(
        f"{name} {size / MiB:.2f}" for name, size in r["files"].items()) + " MiB)")
    print(f"  save {r['save_seconds']:.2f} s, load {r['load_seconds']:.2f} s")
    print(f"  recommend top 10 for all {r['users']:,} users, batches of {r['batch_size']}: "
          f"{r['recommend_seconds']:.2f} s ({r['users'] / r['recommend_seconds']:,.0f} users/s)")
    if args.results:
        sizes = run_sizes(args.results)
        total = sum(s["bytes"] for s in sizes.values())
        print(f"saved models under {args.results}: {sum(s['models'] for s in sizes.values())} "
              f"models, {total / MiB:.1f} MiB in all")
        for key, s in sizes.items():
            print(f"  {key}: {s['models']} x, largest {s['largest'] / MiB:.2f} MiB")


if __name__ == "__main__":
    main()
