"""Evaluate a fitted model on an EvalSet: batched full-catalog scores, top-K on the device.

No Python loop over users or items: each batch is one ``model.score`` call ([B, n_items] scores),
one top-K over the catalog with the history filtered, one over a small candidate set for the
unfiltered list (the filtered list plus the history), and a few tensor ops. Coverage accumulates
as a boolean mask over the catalog.

Both protocols come from the same scores in one pass:

- ``unfiltered``: every catalog item is ranked, the user's history items included;
- ``history_filtered``: each user's own history items (all of them, not only the tail a
  sequential model reads) are removed from the ranking before the top-K, the usual reading of
  "full ranking" in sequential recommendation. A target that is itself in the history cannot be
  hit in this protocol (``targets_in_history`` counts such users).

``filter_seen`` says which protocol is the *configured* one: its six metrics are the plain keys
(``ndcg@10``, ..., ``coverage@100``) and its per-user columns the plain columns (``rank``,
``ndcg@10``, ...); the other protocol's are under its name (``metrics["unfiltered"]["ndcg@10"]``,
per-user column ``"unfiltered/ndcg@10"``).

A model whose ``batching`` is ``"length"`` (a sequential model's ``batching: length``) has its
histories scored in order of length, each batch padded only to its longest history; the metrics
and the per-user frame are those of scoring in the set's order, since padding is masked.
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
#: the two evaluation protocols, by their names in metrics.json, per_user.parquet and table2.csv
UNFILTERED, FILTERED = "unfiltered", "history_filtered"
PROTOCOLS = (UNFILTERED, FILTERED)


def protocol_name(filter_seen: bool) -> str:
    """The protocol ``evaluation.filter_seen`` configures: ``history_filtered`` or ``unfiltered``."""
    return FILTERED if filter_seen else UNFILTERED


def other_protocol(protocol: str) -> str:
    if protocol not in PROTOCOLS:
        raise ValueError(f"unknown evaluation protocol {protocol!r}; expected one of {PROTOCOLS}")
    return FILTERED if protocol == UNFILTERED else UNFILTERED


def metric_names(ks: tuple[int, ...] = KS) -> list[str]:
    return [f"{m}@{k}" for k in ks for m in ("ndcg", "recall", "coverage")]


def _history(evalset: EvalSet, users: np.ndarray, device) -> tuple[torch.Tensor, torch.Tensor]:
    """(row in batch, item) of every history item of the users at ``users`` [B], the whole
    history."""
    lens = evalset.lengths[users]
    rows = np.repeat(np.arange(len(users)), lens)
    within = np.arange(lens.sum()) - np.repeat(np.cumsum(lens) - lens, lens)
    src = np.repeat(evalset.offsets[users], lens) + within
    return (torch.from_numpy(rows).to(device),
            torch.from_numpy(np.asarray(evalset.items[src], dtype=np.int64)).to(device))


def _filtered_top(scores, rows, items, kmax, name) -> torch.Tensor:
    """Top-kmax of ``scores`` with every (row, item) of the history pushed below the rest.

    The one top-K over the whole catalog. A contiguous score matrix is masked in place and
    restored afterwards (a copy of [B, n_items] scores costs about as much as the top-K); a
    model's view that cannot be written (e.g. an expanded popularity row) is copied.
    """
    minus_inf = torch.tensor(float("-inf"), device=scores.device)
    if scores.is_contiguous():
        kept = scores[rows, items]
        scores.index_put_((rows, items), minus_inf)
        try:
            top = topk_items(scores, kmax)
            top_score = scores.gather(1, top[:, :1])
        finally:
            scores.index_put_((rows, items), kept)  # a model may hand back a tensor it keeps
    else:
        filtered = scores.index_put((rows, items), minus_inf)
        top = topk_items(filtered, kmax)
        top_score = filtered.gather(1, top[:, :1])
    # torch.topk ranks NaN above every number, so a NaN off the history tops its row
    if torch.isnan(top_score).any():
        raise TrainingError(f"{name}.score returned NaN scores.")
    return top


def _unfiltered_top(scores, top_f, hist_keys, n, n_items, kmax, name) -> torch.Tensor:
    """The unfiltered top-kmax without a second pass over the catalog.

    An unseen item in the unfiltered top-kmax is among the top-kmax unseen items, the filtered
    list; so the unfiltered list is the top-kmax of the filtered list's items and the history's
    items. That candidate set (kmax + history length per row) is ranked in ascending item order,
    so that ``topk_items`` breaks ties by the lower item index as over the whole catalog.
    """
    row_keys = torch.arange(n, device=scores.device).unsqueeze(1) * n_items
    own = (row_keys + top_f)[top_f < n_items]  # the filtered list's real items
    keys = torch.unique(torch.cat([own, hist_keys]))  # sorted: by row, then item
    rows, items = keys // n_items, keys % n_items
    counts = torch.bincount(rows, minlength=n)
    width = int(counts.max()) if len(keys) else 0
    if width >= n_items:  # a history that covers the catalog: no candidate set is smaller
        return topk_items(scores, kmax)
    first = torch.cumsum(counts, 0) - counts
    col = torch.arange(len(keys), device=scores.device) - first[rows]
    cand = torch.full((n, width), n_items, dtype=torch.long, device=scores.device)  # pad: no item
    cand[rows, col] = items
    cand_scores = scores.gather(1, cand.clamp(max=n_items - 1))
    if torch.isnan(cand_scores).any():  # a NaN on a history item (the filter hid it)
        raise TrainingError(f"{name}.score returned NaN scores.")
    cand_scores = cand_scores.masked_fill(cand == n_items, float("-inf"))
    return cand.gather(1, topk_items(cand_scores, min(kmax, n_items)))


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
) -> tuple[dict, pd.DataFrame]:
    """Return (metrics as fractions, per-user frame), both protocols from the same scores.

    metrics: ``ndcg@K``, ``recall@K``, ``coverage@K`` of the configured protocol
    (``filter_seen``), ``protocol`` (its name), the other protocol's six under its name (a
    dict), and ``targets_in_history`` (the fraction of users whose target is in their history).
    per-user frame: user, target, target_in_history, then rank, ndcg@K, recall@K of the
    configured protocol and the same columns prefixed ``"<other protocol>/"``.
    """
    device = torch.device(device)
    n_items, kmax = evalset.n_items, max(ks)
    # coverage masks with a spare slot: n_items marks "no item" in a filtered list that ran out
    covered = {p: {k: torch.zeros(n_items + 1, dtype=torch.bool, device=device) for k in ks}
               for p in PROTOCOLS}
    positions: dict[str, list[torch.Tensor]] = {p: [] for p in PROTOCOLS}
    in_history = []
    max_len = getattr(model, "max_history", None)
    # the users in scoring order: the set's, or (batching "length") by history length, so that
    # each batch is padded to about its histories' own length; per-user results return to the
    # set's order at the end
    order = (evalset.by_length(max_len) if getattr(model, "batching", "random") == "length"
             else np.arange(len(evalset)))
    chunks = [order[s:s + batch_size] for s in range(0, len(order), batch_size)]
    for users in tqdm(chunks, disable=not progress, desc="evaluate", unit="batch"):
        batch = evalset.take(users, max_len).to(device)
        scores = model.score(batch).to(device=device, dtype=torch.float32)  # [B, n_items]
        n = len(batch.lengths)
        if scores.shape != (n, n_items):
            raise TrainingError(
                f"{type(model).__name__}.score returned shape {tuple(scores.shape)}, expected "
                f"({n}, {n_items}) = (batch, catalog)."
            )
        rows, items = _history(evalset, users, device)
        hist_keys = torch.unique(rows * n_items + items)  # (row, item) of the history, sorted
        top_f = _filtered_top(scores, hist_keys // n_items, hist_keys % n_items, kmax,
                              type(model).__name__)  # [B, kmax]
        # a history that leaves fewer than kmax unseen items puts seen ones (score -inf) at the
        # tail of the filtered list: they are not recommendations, mark them "no item" (n_items)
        row_keys = torch.arange(n, device=device).unsqueeze(1) * n_items
        top_f = top_f.masked_fill(torch.isin(row_keys + top_f, hist_keys), n_items)
        top = _unfiltered_top(scores, top_f, hist_keys, n, n_items, kmax, type(model).__name__)
        targets = torch.from_numpy(evalset.targets[users]).to(device)
        in_history.append(torch.isin(torch.arange(n, device=device) * n_items + targets, hist_keys)
                          & (targets >= 0))
        for protocol, t in ((UNFILTERED, top), (FILTERED, top_f)):
            for k in ks:
                covered[protocol][k][t[:, :k].reshape(-1)] = True
            positions[protocol].append(target_positions(t, targets).cpu())

    configured = protocol_name(filter_seen)
    other = other_protocol(configured)
    back = np.argsort(order)  # scoring order -> the set's order
    in_hist = torch.cat(in_history).cpu().numpy()[back] if in_history else np.zeros(0, dtype=bool)
    per_user = {"user": evalset.users, "target": evalset.targets, "target_in_history": in_hist}
    metrics: dict = {}
    blocks = {}
    for protocol in (configured, other):
        prefix = "" if protocol == configured else f"{protocol}/"
        pos = (torch.cat(positions[protocol])[torch.from_numpy(back)] if positions[protocol]
               else torch.zeros(0, dtype=torch.long))
        per_user[f"{prefix}rank"] = pos.numpy().astype(np.int64)
        block = {}
        for k in ks:
            ndcg, recall = ndcg_recall(pos, k)
            per_user[f"{prefix}ndcg@{k}"] = ndcg.numpy()
            per_user[f"{prefix}recall@{k}"] = recall.numpy()
            block[f"ndcg@{k}"] = float(ndcg.mean()) if len(pos) else float("nan")
            block[f"recall@{k}"] = float(recall.mean()) if len(pos) else float("nan")
            block[f"coverage@{k}"] = float(covered[protocol][k][:n_items].sum().item() / n_items)
        blocks[protocol] = {m: block[m] for m in metric_names(ks)}
    metrics.update(blocks[configured])
    metrics["protocol"] = configured
    metrics[other] = blocks[other]
    metrics["targets_in_history"] = float(in_hist.mean()) if len(in_hist) else float("nan")
    return metrics, pd.DataFrame(per_user)
