"""The transformer sequence encoder of SASRec and BERT4Rec (and of CREATE and MRGSRec).

Input: item ids [B, L], left-padded with ``pad_id = n_items`` (as ``HistoryBatch.items``), L <=
``max_len``. Output: one state per position [B, L, d]; the state at a padded position is 0.

- item embeddings: one table of ``n_items + 1`` rows (the last is padding, kept at zero), or
  ``n_items + 2`` with ``mask_token=True`` (row ``n_items + 1`` is BERT4Rec's [MASK]); the first
  ``n_items`` rows double as the output layer (``item_weights``);
- learnable positional embeddings, aligned to the right end: the last column of any input gets
  position ``max_len - 1``. A history's real items get the same positions however much left
  padding precedes them, so padding never changes a user state;
- ``input_norm``: a LayerNorm on item + position embeddings before the embedding dropout (off by
  default; the predecessor MRGSRec of CREATE's authors has it);
- ``norm_first=True`` (default): pre-norm ``nn.TransformerEncoder`` layers with dropout and a final
  LayerNorm; ``norm_first=False``: post-norm layers (each ends in its own LayerNorm), no final
  LayerNorm, as the predecessor;
- ``init``: ``"scaled"`` (default): item and position embeddings normal with std d^-1/2, the
  transformer's layers at torch's defaults; ``"trunc_normal"``: every weight matrix and embedding
  truncated normal with std 0.02 at +-2 std, biases 0, LayerNorms 1 (the predecessor's
  ``initializer_range: 0.02``). ``init_std(dim, init)`` is the std the item table starts at;
- attention: no query sees a padded key (the key padding mask) and, with ``causal=True``, none
  sees a later position. A padded query would then see no key at all, and a softmax over nothing
  gives NaN, which the next layer spreads (0 * NaN = NaN) even into real rows. So every query may
  always attend to itself: real queries lose nothing (they see themselves anyway), a padded query
  sees only itself, stays finite and is never seen by a real one. An all-padding row (a history
  of length 0) gives finite states.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from recbench.errors import ConfigError
from recbench.params import INITS, TRUNC_STD

class SequenceEncoder(nn.Module):
    def __init__(self, n_items: int, *, dim: int = 64, n_layers: int = 2, n_heads: int = 2,
                 dropout: float = 0.2, max_len: int = 50, causal: bool = True,
                 mask_token: bool = False, ffn_dim: int | None = None, input_norm: bool = False,
                 norm_first: bool = True, init: str = "scaled"):
        super().__init__()
        if dim % n_heads:
            raise ConfigError(f"dim={dim} is not divisible by n_heads={n_heads}; change one of them.")
        if init not in INITS:
            raise ConfigError(f"init must be one of {INITS}, got {init!r}")
        self.n_items, self.max_len, self.n_heads, self.causal = n_items, max_len, n_heads, causal
        self.pad_id = n_items
        self.mask_id = n_items + 1 if mask_token else None
        self.item_emb = nn.Embedding(n_items + 1 + int(mask_token), dim, padding_idx=self.pad_id)
        self.pos_emb = nn.Embedding(max_len, dim)
        self.input_norm = nn.LayerNorm(dim) if input_norm else nn.Identity()
        self.emb_dropout = nn.Dropout(dropout)
        layer = nn.TransformerEncoderLayer(dim, n_heads, dim_feedforward=ffn_dim or dim,
                                           dropout=dropout, activation="gelu", batch_first=True,
                                           norm_first=norm_first)
        # post-norm layers end in a LayerNorm each: a final one would normalise twice
        self.layers = nn.TransformerEncoder(layer, n_layers,
                                            norm=nn.LayerNorm(dim) if norm_first else None,
                                            enable_nested_tensor=False)
        if init == "scaled":
            nn.init.normal_(self.item_emb.weight, std=dim ** -0.5)
            nn.init.normal_(self.pos_emb.weight, std=dim ** -0.5)
        else:
            self._trunc_normal_init()
        with torch.no_grad():
            self.item_emb.weight[self.pad_id].zero_()

    @torch.no_grad()
    def _trunc_normal_init(self) -> None:
        """Every weight matrix and embedding truncated normal (std 0.02, cut at +-2 std), biases
        0, LayerNorms at weight 1 and bias 0 (what they are built with)."""
        norms = {id(p) for m in self.modules() if isinstance(m, nn.LayerNorm)
                 for p in m.parameters()}
        for name, p in self.named_parameters():
            if id(p) in norms:
                continue
            if name.endswith("bias"):
                p.zero_()
            else:
                nn.init.trunc_normal_(p, std=TRUNC_STD, a=-2 * TRUNC_STD, b=2 * TRUNC_STD)

    @property
    def item_weights(self) -> torch.Tensor:
        """Output embeddings of the catalog, without padding and [MASK] rows: [n_items, d]."""
        return self.item_emb.weight[: self.n_items]

    def attention_mask(self, pad: torch.Tensor) -> torch.Tensor:
        """[B*heads, L, L] bool, True where query i may NOT attend to key j."""
        B, L = pad.shape
        blocked = pad[:, None, :].expand(B, L, L)  # [B, L, L] key j is padding
        if self.causal:
            future = torch.ones(L, L, dtype=torch.bool, device=pad.device).triu(1)  # j > i
            blocked = blocked | future
        itself = torch.eye(L, dtype=torch.bool, device=pad.device)
        blocked = blocked & ~itself  # every query sees itself: no fully masked row
        return blocked.repeat_interleave(self.n_heads, dim=0)  # [B*heads, L, L]

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        """ids [B, L] left-padded -> states [B, L, d] (0 at padded positions)."""
        B, L = ids.shape
        if L > self.max_len:
            raise ValueError(f"input length {L} exceeds max_len={self.max_len}; cut histories to "
                             "their last max_len items (the model's max_history does this).")
        pad = ids == self.pad_id  # [B, L]
        positions = torch.arange(self.max_len - L, self.max_len, device=ids.device)  # [L]
        x = self.input_norm(self.item_emb(ids) + self.pos_emb(positions))  # [B, L, d]
        x = self.emb_dropout(x)
        h = self.layers(x, mask=self.attention_mask(pad))  # [B, L, d]
        return h.masked_fill(pad[..., None], 0.0)


def tail_windows(offsets: np.ndarray, items: np.ndarray, length: int, pad: int,
                 min_items: int = 2) -> tuple[torch.Tensor, torch.Tensor]:
    """The last ``length`` items of every sequence with at least ``min_items`` items.

    ``offsets``, ``items`` as ``Interactions.sequences()`` gives them. Returns (windows [U, length]
    int64 left-padded with ``pad``, real lengths [U] int64), U = number of kept sequences.
    """
    counts = np.diff(offsets)
    keep = np.flatnonzero(counts >= min_items)
    n = np.minimum(counts[keep], length)  # [U] kept items per window
    U = len(keep)
    out = np.full((U, length), pad, dtype=np.int64)
    rows = np.repeat(np.arange(U), n)
    within = np.arange(n.sum()) - np.repeat(np.cumsum(n) - n, n)  # index inside each window
    src = np.repeat(offsets[keep + 1] - n, n) + within
    out[rows, length - np.repeat(n, n) + within] = items[src]
    return torch.from_numpy(out), torch.from_numpy(n.astype(np.int64))


def window_users(offsets: np.ndarray, min_items: int = 2) -> torch.Tensor:
    """The user of each ``tail_windows`` row (users with at least ``min_items`` items), [U] int64."""
    return torch.from_numpy(np.flatnonzero(np.diff(offsets) >= min_items).astype(np.int64))
