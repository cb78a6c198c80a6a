"""How hard each term of CREATE's loss pulls, measured rather than guessed.

    python -m create_model.diagnostics [--dataset-dir DIR] [--graph LightGCN|UltraGCN] [...]

``gradient_norms`` takes one joint step's batch and returns, for each term of Eq. 5 as weighted
in the loss (L_local, w_global L_global, w_align L_align), the L2 norm of its gradient on the
shared item table and on the transformer (every sequential parameter but the item table). A term
whose gradient is 1/1000 of the cross-entropy's does not train what it is meant to; one 5x larger
dominates it. The command prints them at initialisation and after the warm-up, on a split saved
by the pipeline (``results/<dataset>/split``-style folder) or on the embedded data.
"""

from __future__ import annotations

import argparse

import torch


def gradient_norms(model, batch, generator: torch.Generator) -> dict[str, dict[str, float]]:
    """{term: {"item_table": norm, "transformer": norm}} of a joint ``batch`` ("joint", ...)."""
    terms = model.loss_terms(batch, generator)
    weights = model.term_weights(batch[0])
    names = {"L_local": "L_local", "L_global": "w_global L_global", "L_align": "w_align L_align"}
    table = model.seq.encoder.item_emb.weight
    transformer = [q for n, q in model.seq.encoder.named_parameters() if "item_emb" not in n]
    out = {}
    for key in ("L_local", "L_global", "L_align"):
        if key not in terms:
            continue
        grads = torch.autograd.grad(weights[key] * terms[key], [table, *transformer],
                                    retain_graph=True, allow_unused=True)
        norm = [0.0 if g is None else float(g.norm()) for g in grads]
        out[names[key]] = {"item_table": norm[0],
                           "transformer": float(torch.tensor(norm[1:]).norm()) if norm[1:] else 0.0}
    return out


def _print(title: str, norms: dict) -> None:
    print(title)
    base = norms["L_local"]
    for name, n in norms.items():
        print(f"  {name:18s} item table {n['item_table']:.3e} ({n['item_table'] / base['item_table']:.3g}x CE)"
              f"   transformer {n['transformer']:.3e}"
              + (f" ({n['transformer'] / base['transformer']:.3g}x CE)" if base["transformer"] else ""))


def main(argv=None) -> None:
    from recbench.data.dataset import load_split, save_split
    from recbench.data.split import GlobalTemporalSplit, index_split
    from recbench.data.synthetic import SyntheticConfig, generate
    from recbench.models import build_model
    from recbench.training import train
    import tempfile

    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dataset-dir", help="a saved split (default: the embedded data)")
    ap.add_argument("--graph", default="LightGCN", choices=["LightGCN", "UltraGCN"])
    ap.add_argument("--alignment", default="barlow", choices=["none", "contrastive", "barlow"])
    ap.add_argument("--barlow-scale", default="mean", choices=["sum", "mean"])
    ap.add_argument("--warmup-epochs", type=int, default=3)
    args = ap.parse_args(argv)
    if args.dataset_dir:
        split = load_split(args.dataset_dir)
    else:
        folder = tempfile.mkdtemp()
        save_split(index_split(GlobalTemporalSplit().split(generate(SyntheticConfig()))), folder)
        split = load_split(folder)
    params = {"graph_backbone": args.graph, "alignment": args.alignment,
              "barlow_scale": args.barlow_scale, "warmup_epochs": args.warmup_epochs,
              "epochs": 1, "progress": False,
              "sequential": {"dim": 64, "max_len": 50}, "graph": {"graph_last_n": 50}}
    torch.manual_seed(0)
    model = build_model("CREATE", params, seed=0)
    model.build(split.train)
    g = torch.Generator().manual_seed(0)
    batch = model.train_batches(args.warmup_epochs + 1, g)[0]
    _print("at initialisation:", gradient_norms(model, batch, g))
    if args.warmup_epochs:
        model = build_model("CREATE", params, seed=0)
        torch.manual_seed(0)
        model.build(split.train)
        train(model, model.params.train_config(), seed=0, epochs=0)  # the warm-up alone
        _print(f"after {args.warmup_epochs} warm-up epochs:", gradient_norms(model, batch, g))


if __name__ == "__main__":
    main()
