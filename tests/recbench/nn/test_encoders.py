"""SequenceEncoder's input and form options do what they say, against hand computations of the
encoder's own modules: an input LayerNorm, post-norm layers, truncated-normal initialisation."""

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from recbench.errors import ConfigError
from recbench.models import build_model
from recbench.nn.encoders import SequenceEncoder
from recbench.params import init_std

N_ITEMS, D = 10, 8
IDS = torch.tensor([[10, 10, 3, 4, 5], [1, 2, 3, 4, 5]])  # left-padded (pad = N_ITEMS)


def encoder(**kw):
    torch.manual_seed(0)
    return SequenceEncoder(N_ITEMS, dim=D, n_layers=1, n_heads=2, dropout=0.0, max_len=5,
                           **kw).eval()


def layer_input(enc, ids):
    """What the first transformer layer receives."""
    seen = {}
    hook = enc.layers.layers[0].register_forward_pre_hook(lambda m, a, kw: seen.update(x=a[0]),
                                                           with_kwargs=True)
    with torch.no_grad():
        enc(ids)
    hook.remove()
    return seen["x"]


def test_input_norm_normalises_item_plus_position_embeddings():
    enc = encoder(input_norm=True)
    x = layer_input(enc, IDS)  # [2, 5, d]
    raw = enc.item_emb(IDS) + enc.pos_emb(torch.arange(5))
    torch.testing.assert_close(x, F.layer_norm(raw, (D,)).detach())
    assert x.mean(-1).abs().max() < 1e-5 and (x.var(-1, unbiased=False) - 1).abs().max() < 1e-3
    plain = encoder()
    torch.testing.assert_close(layer_input(plain, IDS), raw.detach())  # default: no norm


def post_norm_by_hand(layer: nn.TransformerEncoderLayer, x, mask):
    """x = norm1(x + SA(x)); x = norm2(x + FF(x)) with the layer's own modules (dropout 0)."""
    a = layer.self_attn(x, x, x, attn_mask=mask, need_weights=False)[0]
    x = layer.norm1(x + a)
    return layer.norm2(x + layer.linear2(F.gelu(layer.linear1(x))))


@pytest.mark.parametrize("norm_first", [True, False])
def test_norm_first_picks_pre_or_post_norm_layers(norm_first):
    enc = encoder(norm_first=norm_first)
    assert enc.layers.layers[0].norm_first is norm_first
    assert (enc.layers.norm is not None) is norm_first  # the final LayerNorm only with pre-norm
    if norm_first:
        return
    x = layer_input(enc, IDS)
    mask = enc.attention_mask(IDS == N_ITEMS)
    with torch.no_grad():
        want = post_norm_by_hand(enc.layers.layers[0], x, mask).masked_fill(
            (IDS == N_ITEMS)[..., None], 0.0)
        torch.testing.assert_close(enc(IDS), want, rtol=1e-5, atol=1e-5)


def test_trunc_normal_init_is_the_predecessors_and_scaled_stays_the_default():
    torch.manual_seed(0)
    enc = SequenceEncoder(500, dim=64, n_layers=2, n_heads=2, init="trunc_normal",
                          input_norm=True)
    norms = {id(p) for m in enc.modules() if isinstance(m, nn.LayerNorm) for p in m.parameters()}
    for name, p in enc.named_parameters():
        if id(p) in norms:
            assert torch.all(p == (1.0 if name.endswith("weight") else 0.0)), name
        elif name.endswith("bias"):
            assert torch.all(p == 0), name
        else:
            w = p if "item_emb" not in name else p[:500]  # the zeroed padding row aside
            assert w.abs().max() <= 0.04 and w.std().item() == pytest.approx(0.0176, rel=0.1), name
    assert enc.item_weights.std().item() == pytest.approx(init_std(64, "trunc_normal"), rel=0.05)
    default = SequenceEncoder(500, dim=64)
    assert default.item_weights.std().item() == pytest.approx(init_std(64), rel=0.05)
    assert init_std(64) == 64 ** -0.5
    assert init_std(64, "trunc_normal") == pytest.approx(0.02 * math.sqrt(0.7737), rel=1e-3)
    with pytest.raises(ConfigError, match="init"):
        SequenceEncoder(5, dim=8, init="xavier")


@pytest.mark.parametrize("name", ["SASRec", "BERT4Rec"])
def test_sequential_models_build_the_encoder_they_are_given(name, small_split):
    model = build_model(name, {"dim": 16, "max_len": 8, "input_norm": True, "norm_first": False,
                               "init": "trunc_normal"}, seed=0)
    model.build(small_split.train)
    enc = model.encoder
    assert isinstance(enc.input_norm, nn.LayerNorm) and enc.layers.norm is None
    assert enc.item_weights.abs().max() <= 0.04
    default = build_model(name, {"dim": 16, "max_len": 8}, seed=0)
    default.build(small_split.train)
    assert isinstance(default.encoder.input_norm, nn.Identity)
    assert default.encoder.layers.layers[0].norm_first
    with pytest.raises(ConfigError, match="init"):
        build_model(name, {"init": "xavier"})
