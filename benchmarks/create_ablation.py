"""CREATE against SASRec at equal budgets: alignment none / contrastive / Barlow Twins (both
readings of Eq. 3) with both graph backbones, on the embedded data or on your own log.

    python benchmarks/create_ablation.py                                  # embedded data
    python benchmarks/create_ablation.py --csv ml-100k.csv --fixed-epochs 30
    python benchmarks/create_ablation.py --csv ml-100k.csv --protocol loom --fixed-epochs 30

The models' parameters are the config's (``--config``, default config/config.yaml: SASRec and
CREATE with its ``sequential:`` and ``graph:`` settings); only the backbone, the alignment and
``barlow_scale`` change between rows. ``--csv`` reads a custom dataset as the pipeline does
(``recbench.data.prepare.prepare``; ``--columns user,item,timestamp`` names its columns) and
splits it by the paper's global temporal split or, with ``--protocol loom``, leave-one-out.

Budgets: by default every model is fitted as the pipeline's tuning trial 0 does (early stopping on
validation NDCG@10) and retrained on the whole training part for its best epoch count; with
``--fixed-epochs N`` every model trains exactly N epochs (CREATE's warm-up included) with no
selection, which a validation set of a few dozen users (MovieLens-100K's temporal split) cannot
do reliably. One seed; the intervals are over test users (Student t), the p-values a paired t-test
against SASRec on the same users. Prints a markdown table (NDCG@10 unfiltered and with the
history filtered, the graph branch's validation NDCG@10 after warm-up, the last epoch's loss terms)
and writes it to ``--out`` when given. Real data stays out of the repository and out of CI.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import yaml
from scipy import stats

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # this checkout's code, whatever is installed
    sys.path.insert(0, str(ROOT))

from recbench.config import deep_merge  # noqa: E402
from recbench.data.dataset import load_split, save_split  # noqa: E402
from recbench.data.split import index_split, make_split  # noqa: E402
from recbench.evaluation import FILTERED, evaluate  # noqa: E402
from recbench.models import build_model  # noqa: E402

#: (label, overrides of CREATE's config parameters)
VARIANTS = [(f"CREATE {g} {a}{' (Eq. 3 sum)' if scale == 'sum' else ''}",
             {"graph_backbone": g, "alignment": a, "barlow_scale": scale})
            for g in ("LightGCN", "UltraGCN")
            for a, scale in (("none", "mean"), ("contrastive", "mean"), ("barlow", "mean"),
                             ("barlow", "sum"))]


def load_data(csv: str | None, columns: str, protocol: str, folder: Path):
    from recbench.data.prepare import prepare
    from recbench.data.synthetic import SyntheticConfig, generate

    if csv:
        user, item, ts = columns.split(",")
        spec = {"path": csv, "columns": {"user": user, "item": item, "timestamp": ts}}
        log, _ = prepare(Path(csv).stem, spec, csv)
    else:
        log = generate(SyntheticConfig())
    split = {"protocol": "loom", "k_core": 5, "min_user_interactions": 3} if protocol == "loom" \
        else None
    save_split(index_split(make_split(split).split(log)), folder)
    return load_split(folder)


def fit_and_test(name: str, params: dict, data, fixed_epochs: int | None):
    """(test metrics, per-user frame, the fit's history); the pipeline's budget or a fixed one."""
    history = []
    if fixed_epochs:
        params = {**params, "epochs": fixed_epochs, "patience": None}
    else:
        tuning = data.for_tuning()
        trial = build_model(name, params, seed=0)
        trial.fit(tuning.train, tuning.test)
        history = trial.train_result.history
        params = {**params, "epochs": trial.best_epoch}
    model = build_model(name, params, seed=0)
    model.fit(data.train)
    history = history or model.train_result.history
    metrics, per_user = evaluate(model, data.test)
    return metrics, per_user, history


def _ci(x: np.ndarray) -> tuple[float, float]:
    half = stats.t.ppf(0.975, len(x) - 1) * x.std(ddof=1) / np.sqrt(len(x)) if len(x) > 1 else 0
    return 100 * x.mean(), 100 * half


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--config", default=str(ROOT / "config" / "config.yaml"))
    ap.add_argument("--csv", help="a custom dataset (csv, tsv or parquet); default: embedded data")
    ap.add_argument("--columns", default="user,item,timestamp", help="user,item,timestamp names")
    ap.add_argument("--protocol", choices=["global", "loom"], default="global")
    ap.add_argument("--fixed-epochs", type=int, help="train every model exactly this many epochs")
    ap.add_argument("--only", nargs="+", help="labels to run (default: SASRec and every variant)")
    ap.add_argument("--set", nargs="*", default=[], metavar="KEY=YAML",
                    help="override CREATE parameters, e.g. warmup_epochs=10")
    ap.add_argument("--out", type=Path, help="also write the table here")
    args = ap.parse_args(argv)

    models = yaml.safe_load(Path(args.config).read_text())["models"]
    create = deep_merge(models["CREATE"]["params"],
                        {k: yaml.safe_load(v) for k, v in (s.split("=", 1) for s in args.set)})
    runs = [("SASRec", "SASRec", dict(models["SASRec"]["params"]))]
    runs += [(label, "CREATE", {**create, **over}) for label, over in VARIANTS]
    if args.only:
        runs = [r for r in runs if r[0] in args.only]
    data = load_data(args.csv, args.columns, args.protocol, Path(tempfile.mkdtemp()))
    print(f"{data.n_users} users, {data.n_items} items, {len(data.train)} training rows, "
          f"{len(data.test)} test users", flush=True)

    lines = ["| model | NDCG@10 % unfiltered | p vs SASRec | NDCG@10 % history filtered | "
             "p vs SASRec | graph branch val NDCG@10 % after warm-up | last epoch's terms |",
             "|---|---|---|---|---|---|---|"]
    reference = None
    for label, name, params in runs:
        t0 = time.perf_counter()
        metrics, per_user, history = fit_and_test(name, params, data, args.fixed_epochs)
        cols = {"unfiltered": "ndcg@10", "filtered": f"{FILTERED}/ndcg@10"}
        if reference is None and label == "SASRec":
            reference = per_user
        cells = []
        for col in cols.values():
            mean, half = _ci(per_user[col].to_numpy())
            p = (stats.ttest_rel(per_user[col], reference[col]).pvalue
                 if reference is not None and label != "SASRec" else float("nan"))
            cells += [f"{mean:.2f} ± {half:.2f}", "" if np.isnan(p) else f"{p:.3f}"]
        graph = next((h["graph_val_ndcg@10"] for h in history if "graph_val_ndcg@10" in h), None)
        terms = ", ".join(f"{k} {v:.3f}" for k, v in history[-1].items() if k.startswith("L_"))
        lines.append(f"| {label} | {' | '.join(cells)} | "
                     f"{'' if graph is None else f'{100 * graph:.2f}'} | {terms} |")
        print(lines[-1], f"({time.perf_counter() - t0:.0f} s)", flush=True)
    table = "\n".join(lines)
    print("\n" + table)
    if args.out:
        args.out.write_text(table + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
