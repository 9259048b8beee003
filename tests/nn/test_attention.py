"""``nn.MultiheadAttention`` and ``F.scaled_dot_product_attention`` against PyTorch:
outputs, attention weights and every gradient (inputs and parameters), in float32 and
float64, over layouts (sequence-first, batch-first, one sequence), masks (boolean and
float attn_mask, key padding, causal), separate key/value sizes, and second order."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

import chainrule as cr
import chainrule.nn.functional as F
from chainrule import nn

torch = pytest.importorskip("torch")

TOL = {np.float32: {"rtol": 1e-4, "atol": 2e-5}, np.float64: {"rtol": 1e-10, "atol": 1e-12}}
TDTYPE = {np.float32: torch.float32, np.float64: torch.float64}


def _twin(ours: nn.MultiheadAttention, dtype: Any, **kwargs: Any) -> Any:
    theirs = torch.nn.MultiheadAttention(ours.embed_dim, ours.num_heads, **kwargs)
    theirs.to(TDTYPE[dtype])
    theirs.load_state_dict({k: torch.tensor(v.numpy()) for k, v in ours.state_dict().items()})
    return theirs


def _close(a: Any, b: Any, dtype: Any, what: str) -> None:
    np.testing.assert_allclose(a.detach().numpy(), b.detach().numpy(), err_msg=what, **TOL[dtype])


CASES: dict[str, tuple[dict[str, Any], dict[str, Any], tuple[int, ...], tuple[int, ...]]] = {
    # name: (constructor kwargs, forward kwargs as numpy, query shape, key shape)
    "seq-first": ({}, {}, (5, 2, 8), (6, 2, 8)),
    "batch-first": ({"batch_first": True}, {}, (2, 5, 8), (2, 6, 8)),
    "one-sequence": ({}, {}, (5, 8), (6, 8)),
    "bool-mask": ({}, {"attn_mask": "bool"}, (5, 2, 8), (6, 2, 8)),
    "float-mask-per-head": ({}, {"attn_mask": "float3d"}, (5, 2, 8), (6, 2, 8)),
    "key-padding": ({"batch_first": True}, {"key_padding_mask": True}, (2, 5, 8), (2, 6, 8)),
    "per-head-weights": ({}, {"average_attn_weights": False}, (5, 2, 8), (6, 2, 8)),
    "no-bias": ({"bias": False}, {}, (5, 2, 8), (6, 2, 8)),
    "kdim-vdim": ({"kdim": 3, "vdim": 5}, {}, (5, 2, 8), (6, 2, 3)),
}


def _masks(kind: dict[str, Any], length: int, source: int, batch: int) -> tuple[dict, dict]:
    rng = np.random.default_rng(5)
    ours: dict[str, Any] = {}
    theirs: dict[str, Any] = {}
    if kind.get("attn_mask") == "bool":
        mask = rng.random((length, source)) < 0.3
        mask[:, 0] = False  # every query keeps one key
        ours["attn_mask"], theirs["attn_mask"] = cr.tensor(mask), torch.tensor(mask)
    if kind.get("attn_mask") == "float3d":
        mask = rng.standard_normal((batch * 2, length, source))
        ours["attn_mask"], theirs["attn_mask"] = mask, mask
    if kind.get("key_padding_mask"):
        pad = np.zeros((batch, source), bool)
        pad[0, -2:] = True
        ours["key_padding_mask"], theirs["key_padding_mask"] = pad, torch.tensor(pad)
    if "average_attn_weights" in kind:
        ours["average_attn_weights"] = theirs["average_attn_weights"] = False
    return ours, theirs


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["float32", "float64"])
@pytest.mark.parametrize("name", sorted(CASES))
def test_multihead_attention_matches_torch(name: str, dtype: Any) -> None:
    made, called, q_shape, k_shape = CASES[name]
    cr.manual_seed(0)
    ours = nn.MultiheadAttention(8, 2, dtype=dtype, **made)
    theirs = _twin(ours, dtype, **made)
    rng = np.random.default_rng(1)
    v_shape = (*k_shape[:-1], made.get("vdim", 8))
    arrays = [rng.standard_normal(s).astype(dtype) for s in (q_shape, k_shape, v_shape)]
    ours_in = [cr.tensor(a, requires_grad=True) for a in arrays]
    theirs_in = [torch.tensor(a, requires_grad=True) for a in arrays]
    batch = 1 if len(q_shape) == 2 else q_shape[0 if made.get("batch_first") else 1]
    length = q_shape[-2] if made.get("batch_first") or len(q_shape) == 2 else q_shape[0]
    source = k_shape[-2] if made.get("batch_first") or len(k_shape) == 2 else k_shape[0]
    ours_kw, theirs_kw = _masks(called, length, source, batch)
    if isinstance(theirs_kw.get("attn_mask"), np.ndarray):
        theirs_kw["attn_mask"] = torch.tensor(theirs_kw["attn_mask"].astype(dtype))
        ours_kw["attn_mask"] = ours_kw["attn_mask"].astype(dtype)
    out, weights = ours(*ours_in, **ours_kw)
    t_out, t_weights = theirs(*theirs_in, **theirs_kw)
    _close(out, t_out, dtype, "output")
    _close(weights, t_weights, dtype, "attention weights")
    g = rng.standard_normal(out.shape).astype(dtype)
    (out * cr.tensor(g)).sum().backward()
    (t_out * torch.tensor(g)).sum().backward()
    for what, a, b in zip(("query", "key", "value"), ours_in, theirs_in, strict=True):
        _close(a.grad, b.grad, dtype, f"d{what}")
    theirs_params = dict(theirs.named_parameters())
    for pname, p in ours.named_parameters():
        _close(p.grad, theirs_params[pname].grad, dtype, f"d{pname}")


def test_causal_mask_and_no_weights() -> None:
    ours = nn.MultiheadAttention(8, 4, dtype=np.float64)
    theirs = _twin(ours, np.float64)
    x = np.random.default_rng(2).standard_normal((6, 3, 8))
    causal = torch.nn.Transformer.generate_square_subsequent_mask(6, dtype=torch.float64)
    out, none = ours(cr.tensor(x), cr.tensor(x), cr.tensor(x), need_weights=False, is_causal=True)
    t_out, _ = theirs(*(torch.tensor(x),) * 3, attn_mask=causal, is_causal=True)
    assert none is None
    _close(out, t_out, np.float64, "causal output")
    _, weights = ours(cr.tensor(x), cr.tensor(x), cr.tensor(x), is_causal=True)
    assert np.all(np.triu(weights.detach().numpy()[0], k=1) == 0)  # nothing from the future


def test_gradient_penalty_through_attention_matches_torch() -> None:
    ours = nn.MultiheadAttention(4, 2, dtype=np.float64, batch_first=True)
    theirs = _twin(ours, np.float64, batch_first=True)
    x = np.random.default_rng(3).standard_normal((2, 3, 4))
    xc, xt = cr.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    (gc,) = cr.autograd.grad(ours(xc, xc, xc)[0].tanh().sum(), [xc], create_graph=True)
    (gt,) = torch.autograd.grad(theirs(xt, xt, xt)[0].tanh().sum(), [xt], create_graph=True)
    (gc * gc).sum().backward()
    (gt * gt).sum().backward()
    _close(xc.grad, xt.grad, np.float64, "second order dx")
    _close(ours.in_proj_weight.grad, theirs.in_proj_weight.grad, np.float64, "second order dW")


@pytest.mark.parametrize("mask", [None, "bool", "float", "causal"])
def test_scaled_dot_product_attention_matches_torch(mask: str | None) -> None:
    rng = np.random.default_rng(4)
    q, k, v = (rng.standard_normal(s) for s in ((2, 3, 5, 4), (2, 3, 6, 4), (2, 3, 6, 7)))
    kwargs: dict[str, Any] = {}
    t_kwargs: dict[str, Any] = {}
    if mask == "bool":
        allowed = rng.random((5, 6)) < 0.7
        allowed[:, 0] = True
        kwargs["attn_mask"], t_kwargs["attn_mask"] = cr.tensor(allowed), torch.tensor(allowed)
    elif mask == "float":
        add = rng.standard_normal((5, 6))
        kwargs["attn_mask"], t_kwargs["attn_mask"] = cr.tensor(add), torch.tensor(add)
    elif mask == "causal":
        kwargs["is_causal"] = t_kwargs["is_causal"] = True
    ours_in = [cr.tensor(a, requires_grad=True) for a in (q, k, v)]
    theirs_in = [torch.tensor(a, requires_grad=True) for a in (q, k, v)]
    out = F.scaled_dot_product_attention(*ours_in, scale=0.3, **kwargs)
    t_out = torch.nn.functional.scaled_dot_product_attention(*theirs_in, scale=0.3, **t_kwargs)
    _close(out, t_out, np.float64, "sdpa")
    out.sum().backward()
    t_out.sum().backward()
    for a, b in zip(ours_in, theirs_in, strict=True):
        _close(a.grad, b.grad, np.float64, "sdpa gradient")


def test_errors_say_what_is_wrong() -> None:
    with pytest.raises(ValueError, match="num_heads=3 must divide embed_dim=8"):
        nn.MultiheadAttention(8, 3)
    m = nn.MultiheadAttention(8, 2)
    with pytest.raises(
        cr.ShapeError, match=r"expected key \(L, N, E\) or \(L, E\) with 8 features"
    ):
        m(cr.randn(5, 2, 8), cr.randn(5, 2, 4), cr.randn(5, 2, 8))
    with pytest.raises(cr.ShapeError, match=r"attn_mask must be \(L, S\) = \(5, 6\)"):
        m(cr.randn(5, 2, 8), cr.randn(6, 2, 8), cr.randn(6, 2, 8), attn_mask=np.zeros((5, 5), bool))
    with pytest.raises(cr.ShapeError, match=r"key_padding_mask must be \(N, S\) = \(2, 6\)"):
        m(
            cr.randn(5, 2, 8),
            cr.randn(6, 2, 8),
            cr.randn(6, 2, 8),
            key_padding_mask=np.zeros((6, 2), bool),
        )
    with pytest.raises(NotImplementedError, match="add_bias_kv"):
        nn.MultiheadAttention(8, 2, add_bias_kv=True)
