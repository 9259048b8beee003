"""``nn.TransformerEncoderLayer``, ``TransformerDecoderLayer``, their stacks and
``nn.Transformer`` against PyTorch: the same state_dict (same names, loadable both ways)
gives the same outputs and gradients of the inputs and of every parameter, in float32
and float64, over post- and pre-norm, activations, layouts, masks and biases; plus
second order, dropout, the stacks' copies, and the errors."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

import chainrule as cr
from chainrule import nn
from chainrule.autograd import gradcheck, gradgradcheck

torch = pytest.importorskip("torch")
# PyTorch's notes about its inference fast path, which these tests do not take.
pytestmark = pytest.mark.filterwarnings(
    "ignore:.*(nested_tensor|mismatched src_key_padding_mask).*:UserWarning"
)

TOL = {np.float32: {"rtol": 2e-4, "atol": 3e-5}, np.float64: {"rtol": 1e-9, "atol": 1e-11}}
TDTYPE = {np.float32: torch.float32, np.float64: torch.float64}
E, H, FF = 8, 2, 12


def _close(a: Any, b: Any, dtype: Any, what: str) -> None:
    np.testing.assert_allclose(a.detach().numpy(), b.detach().numpy(), err_msg=what, **TOL[dtype])


def _load_into(theirs: Any, ours: nn.Module, dtype: Any) -> Any:
    theirs.to(TDTYPE[dtype])
    assert sorted(theirs.state_dict()) == sorted(ours.state_dict())
    theirs.load_state_dict({k: torch.tensor(v.numpy()) for k, v in ours.state_dict().items()})
    return theirs


def _compare(
    ours: nn.Module,
    theirs: Any,
    arrays: list[np.ndarray],
    dtype: Any,
    ours_kw: dict[str, Any],
    theirs_kw: dict[str, Any],
) -> None:
    """Outputs, the inputs' gradients and every parameter's gradient, for a random
    upstream gradient."""
    ours_in = [cr.tensor(a, requires_grad=True) for a in arrays]
    theirs_in = [torch.tensor(a, requires_grad=True) for a in arrays]
    out = ours(*ours_in, **ours_kw)
    t_out = theirs(*theirs_in, **theirs_kw)
    _close(out, t_out, dtype, "output")
    g = np.random.default_rng(9).standard_normal(out.shape).astype(dtype)
    (out * cr.tensor(g)).sum().backward()
    (t_out * torch.tensor(g)).sum().backward()
    for i, (a, b) in enumerate(zip(ours_in, theirs_in, strict=True)):
        _close(a.grad, b.grad, dtype, f"gradient of input {i}")
    theirs_params = dict(theirs.named_parameters())
    assert sorted(theirs_params) == sorted(name for name, _ in ours.named_parameters())
    for name, p in ours.named_parameters():
        _close(p.grad, theirs_params[name].grad, dtype, f"d{name}")


def _padding(batch: int, length: int) -> np.ndarray:
    pad = np.zeros((batch, length), bool)
    pad[0, -2:] = True  # the first example's last two positions are padding
    return pad


# name: (layer kwargs, input shape as the layout has it, mask kinds)
ENCODER_CASES: dict[str, tuple[dict[str, Any], tuple[int, ...], tuple[str, ...]]] = {
    "post-norm": ({}, (5, 3, E), ()),
    "pre-norm": ({"norm_first": True}, (5, 3, E), ()),
    "gelu-batch-first": ({"activation": "gelu", "batch_first": True}, (3, 5, E), ()),
    "one-sequence": ({}, (5, E), ()),
    "causal-and-padding": ({"batch_first": True}, (3, 5, E), ("causal", "padding")),
    "bool-mask-no-bias": ({"bias": False}, (5, 3, E), ("bool",)),
}


def _masks(kinds: tuple[str, ...], batch: int, length: int, dtype: Any) -> tuple[dict, dict]:
    ours: dict[str, Any] = {}
    theirs: dict[str, Any] = {}
    if "causal" in kinds:
        mask = nn.Transformer.generate_square_subsequent_mask(length, dtype=dtype)
        ours["src_mask"], theirs["src_mask"] = mask, torch.tensor(mask.numpy())
    if "bool" in kinds:
        hidden = np.random.default_rng(6).random((length, length)) < 0.3
        np.fill_diagonal(hidden, False)  # every position sees itself
        ours["src_mask"], theirs["src_mask"] = hidden, torch.tensor(hidden)
    if "padding" in kinds:
        pad = _padding(batch, length)
        ours["src_key_padding_mask"], theirs["src_key_padding_mask"] = pad, torch.tensor(pad)
    return ours, theirs


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["float32", "float64"])
@pytest.mark.parametrize("name", sorted(ENCODER_CASES))
def test_encoder_layer_matches_torch(name: str, dtype: Any) -> None:
    kwargs, shape, kinds = ENCODER_CASES[name]
    cr.manual_seed(0)
    ours = nn.TransformerEncoderLayer(E, H, FF, dropout=0.0, dtype=dtype, **kwargs)
    theirs = _load_into(
        torch.nn.TransformerEncoderLayer(E, H, FF, dropout=0.0, **kwargs), ours, dtype
    )
    batch, length = (shape[0], shape[1]) if kwargs.get("batch_first") else (shape[-2], shape[0])
    x = np.random.default_rng(1).standard_normal(shape).astype(dtype)
    ours_kw, theirs_kw = _masks(kinds, batch, length, dtype)
    _compare(ours, theirs, [x], dtype, ours_kw, theirs_kw)


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["float32", "float64"])
@pytest.mark.parametrize("norm_first", [False, True], ids=["post-norm", "pre-norm"])
def test_decoder_layer_matches_torch(norm_first: bool, dtype: Any) -> None:
    cr.manual_seed(1)
    made = {"dropout": 0.0, "batch_first": True, "norm_first": norm_first}
    ours = nn.TransformerDecoderLayer(E, H, FF, dtype=dtype, **made)
    theirs = _load_into(torch.nn.TransformerDecoderLayer(E, H, FF, **made), ours, dtype)
    rng = np.random.default_rng(2)
    tgt, memory = (rng.standard_normal(s).astype(dtype) for s in ((2, 4, E), (2, 6, E)))
    causal = nn.Transformer.generate_square_subsequent_mask(4, dtype=dtype)
    pad = _padding(2, 6)
    ours_kw = {"tgt_mask": causal, "memory_key_padding_mask": pad}
    theirs_kw = {
        "tgt_mask": torch.tensor(causal.numpy()),
        "memory_key_padding_mask": torch.tensor(pad),
    }
    _compare(ours, theirs, [tgt, memory], dtype, ours_kw, theirs_kw)


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["float32", "float64"])
def test_encoder_stack_with_final_norm_matches_torch(dtype: Any) -> None:
    cr.manual_seed(2)
    layer = nn.TransformerEncoderLayer(E, H, FF, dropout=0.0, norm_first=True, dtype=dtype)
    ours = nn.TransformerEncoder(layer, 3, norm=nn.LayerNorm(E, dtype=dtype))
    t_layer = torch.nn.TransformerEncoderLayer(E, H, FF, dropout=0.0, norm_first=True)
    theirs = torch.nn.TransformerEncoder(
        t_layer, 3, norm=torch.nn.LayerNorm(E), enable_nested_tensor=False
    )
    # Make the copies differ, so that a stack that reused one layer would be caught.
    for i, p in enumerate(ours.parameters()):
        p.data[...] += 0.01 * i
    theirs = _load_into(theirs, ours, dtype)
    x = np.random.default_rng(3).standard_normal((5, 2, E)).astype(dtype)
    _compare(
        ours,
        theirs,
        [x],
        dtype,
        {"is_causal": True, "mask": None},
        {
            "mask": torch.nn.Transformer.generate_square_subsequent_mask(5, dtype=TDTYPE[dtype]),
            "is_causal": True,
        },
    )


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["float32", "float64"])
def test_transformer_matches_torch(dtype: Any) -> None:
    cr.manual_seed(3)
    made = {"dim_feedforward": FF, "dropout": 0.0, "activation": "gelu"}
    ours = nn.Transformer(E, H, 2, 2, dtype=dtype, **made)
    theirs = _load_into(torch.nn.Transformer(E, H, 2, 2, **made), ours, dtype)
    rng = np.random.default_rng(4)
    src, tgt = (rng.standard_normal(s).astype(dtype) for s in ((6, 2, E), (4, 2, E)))
    causal = nn.Transformer.generate_square_subsequent_mask(4, dtype=dtype)
    pad = _padding(2, 6)
    ours_kw = {"tgt_mask": causal, "src_key_padding_mask": pad, "memory_key_padding_mask": pad}
    theirs_kw = {
        "tgt_mask": torch.tensor(causal.numpy()),
        "src_key_padding_mask": torch.tensor(pad),
        "memory_key_padding_mask": torch.tensor(pad),
    }
    _compare(ours, theirs, [src, tgt], dtype, ours_kw, theirs_kw)


def test_module_activation_is_a_submodule_as_in_torch() -> None:
    ours = nn.TransformerEncoderLayer(
        E, H, FF, dropout=0.0, activation=nn.GELU(approximate="tanh"), dtype=np.float64
    )
    t_layer = torch.nn.TransformerEncoderLayer(
        E, H, FF, dropout=0.0, activation=torch.nn.GELU(approximate="tanh")
    )
    theirs = _load_into(t_layer, ours, np.float64)
    assert isinstance(dict(ours.named_children())["activation"], nn.GELU)
    x = np.random.default_rng(5).standard_normal((4, 2, E))
    _compare(ours, theirs, [x], np.float64, {}, {})


def test_transformer_starts_xavier_uniform_and_stack_copies_start_equal() -> None:
    cr.manual_seed(4)
    model = nn.Transformer(16, 4, 2, 2, dim_feedforward=64)
    for name, p in model.named_parameters():
        if p.ndim > 1:
            fan_out, fan_in = p.shape
            bound = np.sqrt(6.0 / (fan_in + fan_out))
            values = p.detach().numpy()
            assert np.abs(values).max() <= bound, name
            assert np.abs(values).max() > 0.9 * bound, name  # drawn over the whole range
    layer = nn.TransformerEncoderLayer(E, H, FF)
    stack = nn.TransformerEncoder(layer, 2)
    first, second = (dict(m.named_parameters()) for m in stack.layers)
    for name, p in first.items():
        np.testing.assert_array_equal(p.detach().numpy(), second[name].detach().numpy())
        assert p is not second[name] and p is not dict(layer.named_parameters())[name]


def test_dropout_is_seeded_and_each_layer_draws_its_own_masks() -> None:
    gen = cr.Generator().manual_seed(7)
    layer = nn.TransformerEncoderLayer(E, H, FF, dropout=0.5, generator=gen)
    stack = nn.TransformerEncoder(layer, 2)
    for module in stack.modules():
        if isinstance(module, nn.Dropout):
            assert module.generator is gen  # shared: copies would repeat each other's masks
    x = cr.randn(5, 2, E)
    gen.manual_seed(7)
    a = stack(x)
    gen.manual_seed(7)
    b = stack(x)
    np.testing.assert_array_equal(a.detach().numpy(), b.detach().numpy())
    c = stack(x)
    assert not np.allclose(a.detach().numpy(), c.detach().numpy())
    stack.eval()
    np.testing.assert_array_equal(stack(x).detach().numpy(), stack(x).detach().numpy())


def test_square_subsequent_mask_matches_torch() -> None:
    ours = nn.Transformer.generate_square_subsequent_mask(5, dtype=np.float64)
    theirs = torch.nn.Transformer.generate_square_subsequent_mask(5, dtype=torch.float64)
    np.testing.assert_array_equal(ours.numpy(), theirs.numpy())


def test_encoder_layer_gradients_first_and_second_order() -> None:
    cr.manual_seed(5)
    layer = nn.TransformerEncoderLayer(4, 2, 6, dropout=0.0, dtype=np.float64, batch_first=True)
    layer.norm1.weight.data[...] = np.linspace(0.5, 1.5, 4)  # not the trivial init values
    x = cr.tensor(np.random.default_rng(6).standard_normal((2, 3, 4)), requires_grad=True)
    w = layer.linear1.weight

    def f(x: cr.Tensor, w: cr.Tensor) -> cr.Tensor:
        return layer(x, is_causal=True).tanh()

    assert gradcheck(f, (x, w))
    assert gradgradcheck(f, (x, w))


def test_errors_say_what_is_wrong() -> None:
    with pytest.raises(ValueError, match="activation must be 'relu', 'gelu' or a callable"):
        nn.TransformerEncoderLayer(E, H, activation="swish")
    with pytest.raises(ValueError, match="num_heads=3 must divide embed_dim=8"):
        nn.TransformerDecoderLayer(E, 3)
    with pytest.raises(ValueError, match="TransformerEncoder: num_layers must be at least 1"):
        nn.TransformerEncoder(nn.TransformerEncoderLayer(E, H), 0)
    model = nn.Transformer(E, H, 1, 1, dim_feedforward=FF, batch_first=True)
    with pytest.raises(ValueError, match="different batch sizes"):
        model(cr.randn(2, 5, E), cr.randn(3, 4, E))
    with pytest.raises(ValueError, match="must end in d_model=8 features"):
        model(cr.randn(2, 5, E), cr.randn(2, 4, 6))
    layer = nn.TransformerEncoderLayer(E, H, FF)
    with pytest.raises(cr.ShapeError, match=r"self_attn.*expected query \(L, N, E\)"):
        layer(cr.randn(5, 2, 6))
