"""The dry check: what training each (dataset, model) of a config needs, against the memory of
the device, printed before any job starts.

    python -m recbench.protocol.memory_check --config config/yambda-scale.yaml \
        [--device cpu|cuda] [--available-gib N] [--results results]

One row per (dataset, model): the data's sizes, the estimate of the whole training run (the
models' own ``memory_need``, the same numbers ``fit`` checks when a job starts: the tables with
their gradients and Adam's moments, the windows, the graph, a step's catalogue loss, an
evaluation batch), the memory available, fits or refused, and what would fit. Sizes come from
``<results>/<dataset>/split_summary.json`` (the training part) when the dataset is split, else
from the source's released counts (Yambda: ``YAMBDA_RELEASES``, an upper bound of the training
part), else they are unknown until prepared. Models whose memory does not grow with the data
this way (PopRnd, EASE: its own check when it fits) have no row estimate.

The workflow runs it at start (``onstart`` in workflow/rules/common.smk): a local run where a
model cannot fit stops there with the table; a cluster run only prints it (each job checks again
on its own node when it starts). Exit status: 1 when a model cannot fit, else 0.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from dataclasses import dataclass
from pathlib import Path

from recbench.errors import ConfigError, ResourceError
from recbench.memory import GiB, Sizes, available_bytes, gib

ROOT = Path(__file__).resolve().parents[2]
SCHEMA = ROOT / "config/schema.yaml"


@dataclass(frozen=True)
class Row:
    dataset: str
    model: str
    sizes: Sizes | None
    source: str  # where the sizes come from
    need: int | None  # bytes; None: not estimated
    status: str  # "fits" | "REFUSED" | "unknown until prepared" | "not estimated"
    fix: str


def dataset_sizes(config: dict, dataset: str, results: Path) -> tuple[Sizes | None, str]:
    """(sizes, where from) of a dataset's training part (see the module docstring)."""
    summary = Path(results) / dataset / "split_summary.json"
    if summary.is_file():
        s = json.loads(summary.read_text())
        return Sizes(s["train_users"], s["train_items"], s["train_interactions"]), str(summary)
    spec = config["datasets"][dataset]
    if spec.get("source") == "yambda":
        from recbench.data.sources import YAMBDA_RELEASES

        size, event = spec.get("size_variant", "50m"), spec.get("event", "likes")
        release = YAMBDA_RELEASES.get(size, {})
        if event in release:
            return (Sizes(release["users"][0], release["items"][0], release[event][0]),
                    f"Yambda-{size} {event}, as released")
    return None, "unknown until prepared"


def resolve(device: str) -> str:
    """``auto`` -> cuda when a GPU is visible, else cpu."""
    if device == "auto":
        import torch

        return "cuda" if torch.cuda.is_available() else "cpu"
    return device


def check(config: dict, device: str, available: int | None,
          results: str | Path = "results") -> list[Row]:
    """A ``Row`` per (dataset, model) of ``config`` against ``available`` bytes on ``device``."""
    from recbench.protocol import config as cfg
    from recbench.registry import model_class

    rows = []
    for dataset in cfg.dataset_names(config):
        sizes, source = dataset_sizes(config, dataset, Path(results))
        for label in cfg.model_names(config, dataset):
            cls_name, params = cfg.model_spec(config, dataset, label)
            cls = model_class(cls_name)
            if not hasattr(cls, "memory_need"):
                rows.append(Row(dataset, label, sizes, source, None, "not estimated",
                                "nothing that grows with the catalogue is trained"))
                continue
            if sizes is None:
                rows.append(Row(dataset, label, None, source, None, "unknown until prepared",
                                "run again once the dataset is split"))
                continue
            p = cfg.built_params(cls_name, params, label)
            # the test evaluation scores in batches of evaluation.batch_size, validation in the
            # model's eval_batch_size: the larger one is the block to cost
            batch = (config.get("evaluation") or {}).get("batch_size") or 0
            if batch > p.eval_batch_size:
                p = dataclasses.replace(p, eval_batch_size=batch)
            need = cls.memory_need(p, sizes, device=device, available=available)
            if need is None:
                rows.append(Row(dataset, label, sizes, source, None, "not estimated", ""))
                continue
            fits = available is None or need.nbytes <= available
            rows.append(Row(dataset, label, sizes, source, need.nbytes,
                            "fits" if fits else "REFUSED", "" if fits else need.fix))
    return rows


def table(rows: list[Row], device: str, available: int | None) -> list[str]:
    """The rows as a markdown table, with a line naming the device and its memory."""
    room = "unknown" if available is None else gib(available)
    out = [f"Memory check before any job: device {device}, {room} available "
           "(estimate: the whole training run, python -m recbench.protocol.memory_check)", "",
           "| dataset | model | users | items | interactions | sizes from | estimate | "
           "available | status | what would fit |",
           "|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        s = r.sizes
        counts = ([f"{s.n_users:,}", f"{s.n_items:,}", f"{s.n_interactions:,}"] if s else
                  ["?"] * 3)
        out.append("| " + " | ".join([r.dataset, r.model, *counts, r.source,
                                     gib(r.need) if r.need is not None else "—", room, r.status,
                                     r.fix.replace("|", "/") or "—"]) + " |")
    return out


def before_jobs(config: dict, logger, local: bool = True) -> None:
    """The workflow's check at start: the table to ``logger``; a local run where a model
    cannot fit stops with ResourceError (a cluster run's jobs check on their own nodes)."""
    import os

    from recbench.memory import SKIP_ENV

    device = resolve(config.get("device", "auto"))
    available = available_bytes(device)
    rows = check(config, device, available)
    logger.info("\n".join(table(rows, device, available)))
    refused = [r for r in rows if r.status == "REFUSED"]
    if refused and local and os.environ.get(SKIP_ENV, "").strip() in ("", "0"):
        raise ResourceError(
            "stopping before any job: " + "; ".join(
                f"{r.dataset}/{r.model} needs about {gib(r.need)} of {device} memory, "
                f"{gib(available)} available. {r.fix}" for r in refused)
            + f". (Exclude the model from the dataset, or set {SKIP_ENV}=1 to try anyway.)")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--config", default="config/config.yaml")
    ap.add_argument("--device", default=None, help="cpu or cuda (default: the config's)")
    ap.add_argument("--available-gib", type=float, default=None,
                    help="memory to check against (default: what the device has free now)")
    ap.add_argument("--results", default="results", help="where split_summary.json files are")
    args = ap.parse_args(argv)
    from recbench.protocol import config as cfg

    if not Path(args.config).is_file():
        raise ConfigError(f"--config {args.config}: no such file; name a config such as "
                          "config/yambda-scale.yaml.")
    config = cfg.load_validated(args.config, SCHEMA)
    device = resolve(args.device or config.get("device", "auto"))
    if args.available_gib is not None:
        available = int(args.available_gib * GiB)
    elif device.startswith("cuda"):
        import torch

        if not torch.cuda.is_available():
            raise ConfigError("--device cuda but no GPU is visible here; give the GPU's memory "
                              "with --available-gib (80 for one 80 GB GPU).")
        available = available_bytes(device)
    else:
        available = available_bytes(device)
    rows = check(config, device, available, args.results)
    print("\n".join(table(rows, device, available)))
    return 1 if any(r.status == "REFUSED" for r in rows) else 0


if __name__ == "__main__":
    from recbench.errors import BenchError

    try:
        sys.exit(main())
    except BenchError as exc:  # a config or device problem: its message, no traceback
        print(f"memory_check: {exc}", file=sys.stderr)
        sys.exit(2)
