"""Evaluate a fitted model on an EvalSet: batched full-catalog scores, top-K on the device.

No Python loop over users or items: each batch is one ``model.score`` call ([B, n_items] scores),
one top-K, and a few tensor ops. Coverage accumulates as a boolean mask over the catalog.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch
from tqdm import tqdm

from recbench.data.dataset import EvalSet
from recbench.errors import TrainingError
from recbench.metrics import ndcg_recall, target_positions, topk_items

KS = (10, 100)


@torch.no_grad()
def evaluate(
    model,
    evalset: EvalSet,
    *,
    ks: tuple[int, ...] = KS,
    batch_size: int = 1024,
    filter_seen: bool = False,
    device: str | torch.device = "cpu",
    progress: bool = False,
) -> tuple[dict[str, float], pd.DataFrame]:
    """Return (metrics as fractions, per-user frame with user, target, rank, ndcg@K, recall@K)."""
    device = torch.device(device)
    n_items, kmax = evalset.n_items, max(ks)
    covered = {k: torch.zeros(n_items, dtype=torch.bool, device=device) for k in ks}
    positions = []
    max_len = getattr(model, "max_history", None)
    batches = evalset.batches(batch_size, max_len=max_len)
    for start, batch in tqdm(batches, total=-(-len(evalset) // batch_size), disable=not progress,
                             desc="evaluate", unit="batch"):
        batch = batch.to(device)
        scores = model.score(batch).to(device=device, dtype=torch.float32)  # [B, n_items]
        if scores.shape != (len(batch.lengths), n_items):
            raise TrainingError(
                f"{type(model).__name__}.score returned shape {tuple(scores.shape)}, expected "
                f"({len(batch.lengths)}, {n_items}) = (batch, catalog)."
            )
        if filter_seen:
            seen = batch.items.clone()
            seen[seen == batch.pad] = n_items  # scatter into a spare column, then drop it
            mask = torch.zeros(len(seen), n_items + 1, dtype=torch.bool, device=device)
            mask.scatter_(1, seen, True)
            scores = scores.masked_fill(mask[:, :n_items], float("-inf"))
        top = topk_items(scores, kmax)  # [B, kmax]
        # torch.topk ranks NaN above every number, so a NaN anywhere in a row tops that row
        if torch.isnan(scores.gather(1, top[:, :1])).any():
            raise TrainingError(f"{type(model).__name__}.score returned NaN scores.")
        for k in ks:
            covered[k][top[:, :k].reshape(-1)] = True
        targets = torch.from_numpy(evalset.targets[start : start + len(top)]).to(device)
        positions.append(target_positions(top, targets).cpu())

    pos = torch.cat(positions) if positions else torch.zeros(0, dtype=torch.long)
    per_user = {"user": evalset.users, "target": evalset.targets, "rank": pos.numpy()}
    metrics = {}
    for k in ks:
        ndcg, recall = ndcg_recall(pos, k)
        per_user[f"ndcg@{k}"] = ndcg.numpy()
        per_user[f"recall@{k}"] = recall.numpy()
        metrics[f"ndcg@{k}"] = float(ndcg.mean()) if len(pos) else float("nan")
        metrics[f"recall@{k}"] = float(recall.mean()) if len(pos) else float("nan")
        metrics[f"coverage@{k}"] = float(covered[k].sum().item() / n_items)
    return metrics, pd.DataFrame(per_user).astype({"rank": np.int64})
