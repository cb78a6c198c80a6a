"""What epoch checkpoints cost: a default-run epoch with and without a checkpoint after it.

    python benchmarks/bench_checkpoint.py [--rounds 5] [--epochs 3] [--every N] [--model ...]

The default config's (config/config.yaml) SASRec and CREATE, with their configured parameters,
on the embedded dataset (generated, split and indexed as the workflow does), one thread as a
default-run job has (``threads: 1``), each fit a final fit's (no validation). A round trains
``--epochs`` epochs (CREATE: its warm-up ones and then these) twice from the same built model,
once without checkpoints and once writing one after every ``--every``-th epoch (default 1:
after every epoch, what the goal bounds; the config's ``checkpoint_every`` writes one every
few), the two taking turns; the best epoch time of each over the rounds, their ratio (goal: at
most 1.02), the checkpoint's size and one save's time (best of the rounds).

``run(...)`` measures and returns a dict (``benchmarks/run_all.py``'s "checkpoint" section calls
it in a fresh process); ``main`` prints it.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import torch

from recbench.checkpoints import Checkpoints
from recbench.protocol.config import load_validated, model_spec
from recbench.data.dataset import load_split, save_split
from recbench.data.split import index_split, make_split
from recbench.data.synthetic import SyntheticConfig, generate
from recbench.models import build_model
from recbench.training import train_model

GOAL = 1.02  # epoch time with a checkpoint after every epoch / without, at most
ROOT = Path(__file__).resolve().parent.parent
CONFIG, SCHEMA = ROOT / "config" / "config.yaml", ROOT / "config" / "schema.yaml"
DATASET = "synthetic"
MODELS = ("SASRec", "CREATE")


def default_split(folder: Path):
    """The default run's embedded dataset, split as the workflow splits it."""
    config = load_validated(CONFIG, SCHEMA)
    spec = config["datasets"][DATASET]
    log = generate(SyntheticConfig(**spec["params"]))
    save_split(index_split(make_split(config["split"]).split(log)), folder)
    return config, load_split(folder)


def epoch_seconds(label: str, config: dict, data, epochs: int,
                  checkpoints: Checkpoints | None) -> float:
    """Seconds per epoch of a final fit of ``epochs`` epochs (CREATE: its warm-up epochs and then
    these; both count), the model built (seeded) before the clock starts."""
    name, params = model_spec(config, DATASET, label)
    model = build_model(name, {**params, "epochs": epochs, "progress": False}, seed=0,
                        label=label, filter_seen=config["evaluation"]["filter_seen"])
    torch.manual_seed(0)
    model.build(data.train)
    model.checkpoints = checkpoints
    if checkpoints is not None and checkpoints.path.exists():
        checkpoints.path.unlink()  # train every epoch, never resume
    t0 = time.perf_counter()
    train_model(model)
    return (time.perf_counter() - t0) / (model.warmup_epochs + epochs)


def measure(label: str, config: dict, data, folder: Path, epochs: int, rounds: int,
            every: int) -> dict:
    checkpoints = Checkpoints(folder / label, every=every)
    best = {"off": float("inf"), "on": float("inf")}
    epoch_seconds(label, config, data, 1, None)  # warm-up: allocator, kernels
    for _ in range(rounds):
        best["off"] = min(best["off"], epoch_seconds(label, config, data, epochs, None))
        best["on"] = min(best["on"], epoch_seconds(label, config, data, epochs, checkpoints))
    if not checkpoints.path.exists():
        raise ValueError(f"{label}: no checkpoint was written in a fit of {epochs} epoch(s) with "
                         f"one every {every} epochs; give more --epochs or a smaller --every")
    size = checkpoints.path.stat().st_size
    state, save_s = torch.load(checkpoints.path, weights_only=True), float("inf")
    for _ in range(rounds):  # one save alone, best of the rounds
        t0 = time.perf_counter()
        checkpoints.save(state)
        save_s = min(save_s, time.perf_counter() - t0)
    return {"model": label, "epoch_s": best["off"], "epoch_checkpointed_s": best["on"],
            "ratio": best["on"] / best["off"], "checkpoint_MiB": size / 2**20, "save_s": save_s}


def run(models=MODELS, epochs: int = 3, rounds: int = 5, every: int | None = 1,
        threads: int = 1) -> dict:
    """The measurement, as a dict: ``every`` (epochs between checkpoints; None: the config's),
    ``default_every`` (the config's ``checkpoint_every``), ``epochs``, ``rounds``, ``threads``,
    ``goal`` and ``models``: one ``measure`` row per model (epoch seconds without and with
    checkpoints, their ratio, the checkpoint's MiB, one save's seconds). Sets torch's threads to
    ``threads`` (a default-run job's), so a caller keeps its own threads by calling it in a fresh
    process (``_common.in_fresh_process``)."""
    torch.set_num_threads(threads)
    with tempfile.TemporaryDirectory() as tmp:
        config, data = default_split(Path(tmp) / "split")
        every = every or config["checkpoint_every"]
        rows = [measure(label, config, data, Path(tmp), epochs, rounds, every)
                for label in models]
    return {"every": every, "default_every": config["checkpoint_every"], "epochs": epochs,
            "rounds": rounds, "threads": threads, "goal": GOAL, "models": rows}


def report(result: dict) -> list[str]:
    """``run``'s result as the lines ``main`` prints."""
    every = result["every"]
    head = (f"epoch time with a checkpoint after every {every}-th epoch / without "
            f"({result['rounds']} rounds, best of each; goal <= {result['goal']}):")
    lines = [head]
    for r in result["models"]:
        lines.append(
            f"  {r['model']:<8} epoch {r['epoch_s']:.3f} s -> {r['epoch_checkpointed_s']:.3f} s"
            f"  ratio {r['ratio']:.3f} ({'ok' if r['ratio'] <= result['goal'] else 'OVER'}); "
            f"checkpoint {r['checkpoint_MiB']:.1f} MiB, one save {r['save_s'] * 1000:.0f} ms = "
            f"{r['save_s'] / (every * r['epoch_s']):.1%} of {every} epoch(s)")
    return lines


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--epochs", type=int, default=3, help="epochs per timed fit")
    ap.add_argument("--model", nargs="+", default=list(MODELS))
    ap.add_argument("--every", type=int, default=1,
                    help="epochs between checkpoints (default 1; 0: config/config.yaml's "
                         "checkpoint_every)")
    args = ap.parse_args(argv)
    result = run(args.model, epochs=args.epochs, rounds=args.rounds, every=args.every or None)
    print("\n".join(report(result)))
    return result


if __name__ == "__main__":
    main()
