"""The embedded default dataset: a seeded interaction log with structure a real model can learn.

Planted signals, each aimed at one model family:
- popularity: item weights follow a power law, so PopRnd beats Random;
- communities: every item belongs to one community and each user draws mostly from one primary
  and one secondary community, so collaborative filtering (SVD, iALS, EASE) and graph models
  beat PopRnd;
- transitions: every item has a few successor items; with probability ``p_transition`` a user's
  next item is a successor of the previous one, so order-aware models (SASRec, BERT4Rec) beat
  order-free ones;
- time: users start at different moments on one global clock and stay active for a while, so a
  global temporal split leaves many users with interactions on both sides of the cut.

The generator is plain numpy with one ``numpy.random.Generator``: the same parameters and seed
give the same log, byte for byte.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import polars as pl


@dataclass(frozen=True)
class SyntheticConfig:
    n_users: int = 2000
    n_items: int = 2000
    n_communities: int = 10
    mean_length: float = 30.0  # mean interactions per user (log-normal lengths)
    min_length: int = 2  # some users fall below the split's 3-interaction filter on purpose
    max_length: int = 200
    popularity_exponent: float = 0.8  # item weight ~ 1 / rank**exponent
    n_successors: int = 3
    p_transition: float = 0.5  # next item follows the previous item's successors
    p_secondary: float = 0.3  # fresh draw from the user's secondary community
    p_explore: float = 0.05  # fresh draw from the global popularity distribution
    time_span: int = 10_000_000  # seconds on the global clock
    activity_fraction: float = 0.35  # a user's active period, as a fraction of the span
    seed: int = 42


def _normalise(w: np.ndarray) -> np.ndarray:
    return w / w.sum()


def generate(cfg: SyntheticConfig = SyntheticConfig()) -> pl.DataFrame:
    """Return a log with columns user (int64), item (int64), timestamp (int64), sorted by time."""
    if cfg.n_items < cfg.n_communities * (cfg.n_successors + 1):
        raise ValueError(
            f"synthetic: n_items={cfg.n_items} is too small for {cfg.n_communities} communities "
            f"with {cfg.n_successors} successors each; raise n_items or lower n_communities"
        )
    rng = np.random.default_rng(cfg.seed)
    n_items, n_comm = cfg.n_items, cfg.n_communities

    # Items: a community each (every community non-empty), power-law popularity.
    community = np.concatenate([np.arange(n_comm), rng.integers(0, n_comm, n_items - n_comm)])
    rng.shuffle(community)
    popularity = 1.0 / (1.0 + rng.permutation(n_items)) ** cfg.popularity_exponent
    members = [np.flatnonzero(community == c) for c in range(n_comm)]
    member_p = [_normalise(popularity[m]) for m in members]
    global_p = _normalise(popularity)

    # Transitions: each item's successors are popular items of its own community.
    successors = np.empty((n_items, cfg.n_successors), dtype=np.int64)
    for item in range(n_items):
        m, p = members[community[item]], member_p[community[item]]
        p = np.where(m == item, 0.0, p)
        successors[item] = rng.choice(m, size=cfg.n_successors, replace=False, p=_normalise(p))

    # Users: lengths, communities and active periods on the global clock.
    sigma = 0.8
    lengths = rng.lognormal(np.log(cfg.mean_length) - sigma**2 / 2, sigma, cfg.n_users)
    lengths = np.clip(np.round(lengths), cfg.min_length, cfg.max_length).astype(np.int64)
    comm_size_p = _normalise(np.array([len(m) for m in members], dtype=float))
    primary = rng.choice(n_comm, size=cfg.n_users, p=comm_size_p)
    secondary = rng.choice(n_comm, size=cfg.n_users, p=comm_size_p)
    active = cfg.activity_fraction * cfg.time_span
    start = rng.uniform(0, cfg.time_span - active, cfg.n_users)

    users, items, times = [], [], []
    for u in range(cfg.n_users):
        n = lengths[u]
        draws = rng.random((n, 2))
        seq = np.empty(n, dtype=np.int64)
        for t in range(n):
            if t > 0 and draws[t, 0] < cfg.p_transition:
                seq[t] = successors[seq[t - 1], rng.integers(cfg.n_successors)]
            elif draws[t, 1] < cfg.p_explore:
                seq[t] = rng.choice(n_items, p=global_p)
            else:
                c = secondary[u] if draws[t, 1] < cfg.p_explore + cfg.p_secondary else primary[u]
                seq[t] = rng.choice(members[c], p=member_p[c])
        gaps = rng.exponential(active / n, n)
        users.append(np.full(n, u, dtype=np.int64))
        items.append(seq)
        times.append((start[u] + np.cumsum(gaps)).astype(np.int64))

    return pl.DataFrame(
        {
            "user": np.concatenate(users),
            "item": np.concatenate(items),
            "timestamp": np.concatenate(times),
        }
    ).sort("timestamp", "user", maintain_order=True)


def config_from_params(params: dict | None) -> SyntheticConfig:
    """Build a SyntheticConfig from a config mapping, naming any unknown key."""
    params = dict(params or {})
    known = set(asdict(SyntheticConfig()))
    unknown = sorted(set(params) - known)
    if unknown:
        from recbench.errors import ConfigError

        raise ConfigError(
            f"synthetic dataset: unknown parameter(s) {unknown}; valid ones are {sorted(known)}"
        )
    return SyntheticConfig(**params)
