"""Trained models as artefacts: saved by a final fit, loaded in one call, asked for
recommendations in the dataset's own ids.

A saved model is a folder (``results/<dataset>/<model>/seed<seed>/model/`` in the workflow):

    model.json      what it is: format, model name and class, params, seed, fit facts (epochs,
                    best epoch, history, fit seconds, device), catalogue size and digest, the
                    project's version and commit, and every other file's size and sha256
    weights.pt      the fitted state: a neural model's ``state_dict``, the arrays of the others
                    (``Recommender.fitted_state``), read with ``torch.load(weights_only=True)``
    data.npz        the training log (a neural model rebuilds its layers and graph from it) and
                    the test users' input histories (what ``recommend`` ranks for a user id)
    items.parquet   the external item ids, row i = item index i (the split's items.parquet)
    users.parquet   the external user ids, likewise

The folder is written under a temporary name and renamed, ``model.json`` last inside it, so a
half-written model never has the final name. ``load`` checks every file's size and digest first:
a truncated or altered file is an ``ArtefactError``, never garbage scores; so is a model of
another class than asked for, a newer format, or (given the split) another catalogue.

    from recbench.artefacts import load
    model = load("results/synthetic/SASRec/seed0/model")
    model.recommend(["u17", "u42"], k=10)   # DataFrame: user, item, rank, score (external ids)
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import polars as pl
import torch
from tqdm import tqdm

import recbench
from recbench.data.dataset import EvalSet, Interactions, SplitData
from recbench.errors import ArtefactError
from recbench.metrics import topk_items
from recbench.params import make_params
from recbench.provenance import git_state
from recbench.registry import model_class

log = logging.getLogger(__name__)

#: the layout version ``save`` writes; ``load`` reads it and every older one
FORMAT = 1
FILES = ("weights.pt", "data.npz", "items.parquet", "users.parquet")
META = "model.json"
DIRNAME = "model"


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def catalogue_digest(item_ids: pl.DataFrame) -> str:
    """A digest of the external item ids in index order: two catalogues are the same iff equal."""
    ids = item_ids[item_ids.columns[-1]].cast(pl.Utf8).to_list()
    return hashlib.sha256("\n".join(ids).encode()).hexdigest()


def _code_state() -> dict:
    """The commit of the code that saves (None outside git) and whether it had changes."""
    state = git_state(Path(recbench.__file__).resolve().parents[1])
    return {"commit": state["commit"], "dirty": state["dirty"]}


def save(model, folder: str | os.PathLike, data: SplitData, *, facts: dict | None = None) -> Path:
    """Write fitted ``model`` to ``folder`` (replaced if it exists) with the id maps of ``data``,
    the split it was fitted on; ``facts``: extra JSON-able facts of the fit (fit seconds...).
    Returns the folder."""
    folder = Path(folder)
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", suffix=".tmp", dir=folder.parent))
    try:
        state = model.fitted_state()
        torch.save(state, tmp / "weights.pt")
        train, test = data.train, data.test
        np.savez_compressed(  # ids in the smallest integer type that holds them
            tmp / "data.npz", train_users=_small(train.users), train_items=_small(train.items),
            train_timestamps=train.timestamps, test_users=_small(test.users),
            test_offsets=test.offsets, test_items=_small(test.items))
        data.item_ids.write_parquet(tmp / "items.parquet")
        data.user_ids.write_parquet(tmp / "users.parquet")
        result = getattr(model, "train_result", None)
        meta = {
            "format": FORMAT,
            "model": model.registry_name,
            "class": f"{type(model).__module__}.{type(model).__qualname__}",
            "params": json.loads(json.dumps(dataclasses.asdict(model.params), default=str)),
            "seed": model.seed,
            "n_users": train.n_users,
            "n_items": train.n_items,
            "catalogue_sha256": catalogue_digest(data.item_ids),
            "training": None if result is None else {  # the per-epoch history is in weights.pt
                "epochs_trained": result.epochs_trained, "best_epoch": result.best_epoch,
                "best_metric": result.best_metric},
            "facts": facts or {},
            "recbench_version": recbench.__version__,
            **_code_state(),
            "files": {name: {"bytes": (tmp / name).stat().st_size, "sha256": _sha256(tmp / name)}
                      for name in FILES},
        }
        (tmp / META).write_text(json.dumps(meta, indent=2, sort_keys=True, default=float) + "\n")
        os.chmod(tmp, 0o755)
        if folder.exists():
            shutil.rmtree(folder)
        os.replace(tmp, folder)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)
    model.ids = Ids.from_split(data)
    return folder


def _small(ids: np.ndarray) -> np.ndarray:
    return ids.astype(np.int32) if len(ids) == 0 or ids.max() < 2**31 else ids


def read_meta(folder: str | os.PathLike) -> dict:
    """``model.json`` of a saved model, its format and files checked (ArtefactError if not)."""
    folder = Path(folder)
    if (folder / DIRNAME / META).exists() and not (folder / META).exists():
        folder = folder / DIRNAME  # a seed folder (results/<d>/<m>/seed0) names its model
    path = folder / META
    if not path.exists():
        raise ArtefactError(f"{folder} is not a saved model: it has no {META}. Point at a "
                            "model folder (results/<dataset>/<model>/seed<seed>/model), written "
                            "by the train rule or recbench.artefacts.save.")
    try:
        meta = json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise ArtefactError(f"{path} is not valid JSON ({err}): the folder was not written by "
                            "recbench.artefacts.save; retrain the model (rerun its train job).")
    if not isinstance(meta.get("format"), int) or meta["format"] > FORMAT:
        raise ArtefactError(
            f"{folder} has model format {meta.get('format')!r}; this create-bench "
            f"({recbench.__version__}) reads format {FORMAT} and older. Update create-bench "
            f"(the model was written by {meta.get('recbench_version')}, commit "
            f"{meta.get('commit')}).")
    for name, want in meta["files"].items():
        file = folder / name
        if not file.exists():
            raise ArtefactError(f"{file} is missing: the saved model is incomplete; copy the "
                                "whole folder, or retrain (rerun its train job).")
        if file.stat().st_size != want["bytes"] or _sha256(file) != want["sha256"]:
            raise ArtefactError(
                f"{file} is {file.stat().st_size:,} bytes, {META} records {want['bytes']:,} and "
                "another sha256: the file is truncated or altered (an interrupted copy?). Copy "
                "it again or retrain (rerun its train job).")
    meta["folder"] = str(folder)
    return meta


def load(folder: str | os.PathLike, *, device: str = "cpu", model: str | None = None,
         data: SplitData | None = None):
    """The saved model in ``folder``, ready to ``score`` and ``recommend`` on ``device``.

    ``model``: the registry name expected (e.g. "SASRec"); another one is refused. ``data``: the
    split to evaluate it on; a model fitted on another catalogue is refused.
    """
    meta = read_meta(folder)
    folder = Path(meta["folder"])
    if model is not None and meta["model"] != model:
        raise ArtefactError(f"{folder} holds a {meta['model']} model, not {model}.")
    cls = model_class(meta["model"])
    cls_name = f"{cls.__module__}.{cls.__qualname__}"
    if cls_name != meta["class"]:
        raise ArtefactError(f"{folder} was saved from class {meta['class']}; the name "
                            f"{meta['model']!r} is now {cls_name}. Load it with the code that "
                            f"saved it (commit {meta['commit']}) or retrain.")
    if data is not None and catalogue_digest(data.item_ids) != meta["catalogue_sha256"]:
        raise ArtefactError(
            f"{folder} was fitted on another catalogue ({meta['n_items']:,} items) than this "
            f"split's ({data.n_items:,} items, other ids): retrain it on this split (rerun its "
            "train job).")
    z = {k: v.astype(np.int64) for k, v in np.load(folder / "data.npz").items()}
    train = Interactions(z["train_users"], z["train_items"], z["train_timestamps"],
                         meta["n_users"], meta["n_items"])
    try:
        state = torch.load(folder / "weights.pt", map_location="cpu", weights_only=True)
    except Exception as err:
        raise ArtefactError(f"{folder / 'weights.pt'} is not readable ({type(err).__name__}: "
                            f"{err}); retrain the model (rerun its train job).") from err
    rec = cls(make_params(cls.Params, meta["params"], meta["model"]), seed=meta["seed"],
              device=device)
    try:
        rec.load_fitted_state(state, train)
    except (KeyError, RuntimeError, ValueError) as err:
        raise ArtefactError(f"{folder}: its weights do not fit a {meta['model']} with its "
                            f"params ({type(err).__name__}: {err}); retrain it.") from err
    rec.ids = Ids(pl.read_parquet(folder / "items.parquet"),
                  pl.read_parquet(folder / "users.parquet"), train,
                  EvalSet(z["test_users"], z["test_offsets"], z["test_items"],
                          np.full(len(z["test_users"]), -1), meta["n_items"]))
    rec.meta = meta
    return rec


class Ids:
    """A fitted model's external ids and the histories ``recommend`` ranks for a user id: a test
    user's is the input the evaluation scored (every interaction before the target), any other
    user's is their training log."""

    def __init__(self, item_ids: pl.DataFrame, user_ids: pl.DataFrame, train: Interactions,
                 test: EvalSet):
        self.items = item_ids[item_ids.columns[-1]].to_numpy()  # index -> external id
        self.users = user_ids[user_ids.columns[-1]].to_numpy()
        self.train, self.test = train, test

    @classmethod
    def from_split(cls, data: SplitData) -> "Ids":
        return cls(data.item_ids, data.user_ids, data.train, data.test)

    @staticmethod
    def _index(ids: list, external: np.ndarray, what: str) -> np.ndarray:
        idx = _lookup(ids, external)
        if (idx < 0).any():
            unknown = [ids[i] for i in np.nonzero(idx < 0)[0][:5]]
            raise ArtefactError(f"unknown {what} id(s) {unknown} ({int((idx < 0).sum())} in "
                                f"all): not in the model's training data")
        return idx

    def user_histories(self, users) -> EvalSet:
        """The histories of external ``users``, in the given order."""
        users = list(users)
        idx = self._index(users, self.users, "user")
        offsets, items = self.train.sequences()
        row = np.full(len(self.users), -1)
        row[self.test.users] = np.arange(len(self.test.users))  # user -> test row, -1: none
        r = row[idx]
        test = r >= 0
        # each user's slice of the test histories or of the training log, gathered at once
        lo = np.where(test, self.test.offsets[r.clip(0)], offsets[idx])
        hi = np.where(test, self.test.offsets[r.clip(0) + 1], offsets[idx + 1])
        lengths = hi - lo
        within = np.arange(lengths.sum()) - np.repeat(np.cumsum(lengths) - lengths, lengths)
        src = np.repeat(lo, lengths) + within
        from_test = np.repeat(test, lengths)
        gathered = np.where(from_test, self.test.items[src.clip(max=len(self.test.items) - 1)]
                            if len(self.test.items) else 0,
                            items[src.clip(max=len(items) - 1)] if len(items) else 0)
        return EvalSet(idx.astype(np.int64), np.concatenate([[0], np.cumsum(lengths)]),
                       gathered.astype(np.int64), np.full(len(idx), -1), len(self.items))

    def item_histories(self, histories) -> EvalSet:
        """EvalSet of lists of external item ids (unknown items dropped, as the split does)."""
        parts, dropped = [], 0
        for h in histories:
            h = list(h)
            idx = _lookup(h, self.items)
            dropped += int((idx < 0).sum())
            parts.append(idx[idx >= 0])
        if dropped:
            log.warning("recommend: %d history item(s) not in the catalogue dropped", dropped)
        return _evalset(np.full(len(parts), -1), parts, len(self.items))


def _lookup(ids: list, external: np.ndarray) -> np.ndarray:
    """Indices of external ``ids`` (-1: unknown); a numeric id may come as a string (a command
    line)."""
    if not len(ids):
        return np.zeros(0, np.int64)
    if external.dtype.kind in "iu":
        try:
            ids = [int(i) for i in ids]
        except (TypeError, ValueError):
            pass
    elif external.dtype.kind in "OU":
        ids = [str(i) for i in ids]
    return pd.Index(external).get_indexer(pd.Index(ids, dtype=object))


def _evalset(users, parts, n_items) -> EvalSet:
    lengths = np.array([len(p) for p in parts], dtype=np.int64)
    items = np.concatenate(parts).astype(np.int64) if parts else np.zeros(0, np.int64)
    return EvalSet(np.asarray(users, dtype=np.int64), np.concatenate([[0], np.cumsum(lengths)]),
                   items, np.full(len(parts), -1), n_items)


@torch.no_grad()
def recommend(model, users=None, *, histories=None, k: int = 10, filter_seen: bool = True,
              batch_size: int = 1024, progress: bool | None = None) -> pd.DataFrame:
    """Top-``k`` items for each of ``users`` (external ids) or each of ``histories`` (lists of
    external item ids; a dict names them): a DataFrame of user, item, rank (1 = best), score.

    Batched as the evaluation is: one ``score`` call per ``batch_size`` histories, top-k on the
    device; ``filter_seen`` removes each history's items from its ranking. Ties go to the lower
    item index, as in the evaluation, so a test user's list is the one its metrics ranked.
    """
    ids = getattr(model, "ids", None)
    if ids is None:
        raise ArtefactError("this model has no id maps: load it with recbench.artefacts.load, or "
                            "save it first (recbench.artefacts.save(model, folder, data)).")
    if (users is None) == (histories is None):
        raise ValueError("recommend takes users or histories, not both")
    if users is not None:
        evalset = ids.user_histories([users] if isinstance(users, (str, int, np.integer))
                                     else users)
        labels = ids.users[evalset.users]
    else:
        labels = list(histories) if isinstance(histories, dict) else list(range(len(histories)))
        evalset = ids.item_histories(histories.values() if isinstance(histories, dict)
                                     else histories)
    n_items = len(ids.items)
    k = min(k, n_items)
    top_items, top_scores = [], []
    if isinstance(model, torch.nn.Module):
        model.eval()  # no dropout
    batches = evalset.batches(batch_size, max_len=model.max_history)
    for start, batch in tqdm(batches, total=-(-len(evalset) // batch_size), desc="recommend",
                             unit="batch", disable=None if progress is None else not progress):
        batch = batch.to(model.device)
        scores = model.score(batch).to(dtype=torch.float32).clone()  # [B, n_items]
        if filter_seen:
            n = len(batch.lengths)
            lo, hi = evalset.offsets[start], evalset.offsets[start + n]
            rows = torch.from_numpy(np.repeat(np.arange(n), evalset.lengths[start:start + n]))
            items = torch.from_numpy(evalset.items[lo:hi])
            scores[rows.to(scores.device), items.to(scores.device)] = float("-inf")
        top = topk_items(scores, k)  # [B, k]
        top_items.append(top.cpu())
        top_scores.append(scores.gather(1, top).cpu())
    items = torch.cat(top_items).numpy() if top_items else np.zeros((0, k), np.int64)
    scores = torch.cat(top_scores).numpy() if top_scores else np.zeros((0, k), np.float32)
    keep = np.isfinite(scores).ravel()  # a filtered list shorter than k: seen items are not kept
    return pd.DataFrame({
        "user": np.repeat(np.asarray(labels), k)[keep],
        "item": ids.items[items.ravel()][keep],
        "rank": np.tile(np.arange(1, k + 1), len(labels))[keep],
        "score": scores.ravel()[keep],
    })
