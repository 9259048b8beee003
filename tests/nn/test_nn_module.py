"""``nn.Module``: registration, traversal, modes, state dicts, dtype, hooks, repr."""

from __future__ import annotations

import copy

import numpy as np
import pytest

import chainrule as cr
from chainrule import nn


class Block(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(3, 4)
        self.scale = nn.Parameter(cr.ones(4))
        self.register_buffer("running", cr.zeros(4))
        self.register_buffer("scratch", cr.zeros(2), persistent=False)
        self.plain = cr.zeros(1)  # a plain tensor attribute: not registered

    def forward(self, x: cr.Tensor) -> cr.Tensor:
        return self.fc(x) * self.scale


class Net(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.block = Block()
        self.head = nn.Sequential(nn.ReLU(), nn.Dropout(0.5), nn.Linear(4, 2))

    def forward(self, x: cr.Tensor) -> cr.Tensor:
        return self.head(self.block(x))


def test_named_parameters_are_dotted_and_ordered() -> None:
    names = [name for name, _ in Net().named_parameters()]
    # As PyTorch: a module's own parameters before its children's.
    assert names == [
        "block.scale",
        "block.fc.weight",
        "block.fc.bias",
        "head.2.weight",
        "head.2.bias",
    ]
    assert len(list(Net().parameters())) == 5


def test_children_modules_and_buffers() -> None:
    net = Net()
    assert [type(c).__name__ for c in net.children()] == ["Block", "Sequential"]
    assert [name for name, _ in net.named_modules()] == [
        "",
        "block",
        "block.fc",
        "head",
        "head.0",
        "head.1",
        "head.2",
    ]
    assert [name for name, _ in net.named_buffers()] == ["block.running", "block.scratch"]


def test_shared_parameter_listed_once() -> None:
    layer = nn.Linear(2, 2)
    model = nn.Sequential(layer, nn.ReLU(), layer)
    assert len(list(model.parameters())) == 2


def test_reassign_and_delete_keep_registry_consistent() -> None:
    block = Block()
    block.fc = nn.Linear(3, 5)
    assert block.fc.out_features == 5
    assert dict(block.named_parameters())["fc.weight"].shape == (5, 3)
    del block.scale
    assert "scale" not in dict(block.named_parameters())
    with pytest.raises(TypeError, match=r"nn\.Parameter"):
        block.fc.weight = cr.zeros(5, 3)


def test_assign_before_init_is_a_clear_error() -> None:
    class Broken(nn.Module):
        def __init__(self) -> None:
            self.fc = nn.Linear(2, 2)

    with pytest.raises(AttributeError, match="super"):
        Broken()


def test_train_eval_propagate() -> None:
    net = Net().eval()
    assert not any(m.training for m in net.modules())
    net.train()
    assert all(m.training for m in net.modules())


def test_zero_grad_sets_none_or_zero() -> None:
    net = Net()
    net(cr.randn(5, 3)).sum().backward()
    assert all(p.grad is not None for p in net.parameters())
    net.zero_grad(set_to_none=False)
    assert all(float(np.abs(p.grad.numpy()).sum()) == 0.0 for p in net.parameters())
    net.zero_grad()
    assert all(p.grad is None for p in net.parameters())


def test_state_dict_round_trip_and_sharing() -> None:
    a, b = Net(), Net()
    sd = a.state_dict()
    assert list(sd) == [
        "block.scale",
        "block.running",
        "block.fc.weight",
        "block.fc.bias",
        "head.2.weight",
        "head.2.bias",
    ]  # non-persistent buffer left out
    weight_before = b.block.fc.weight
    result = b.load_state_dict(sd)
    assert result.missing_keys == [] and result.unexpected_keys == []
    assert b.block.fc.weight is weight_before  # loaded in place
    x = cr.randn(4, 3)
    np.testing.assert_array_equal(a.eval()(x).detach().numpy(), b.eval()(x).detach().numpy())
    sd["block.scale"].data[0] = 7.0  # state_dict tensors share memory with the module
    assert a.block.scale.data[0] == 7.0


def test_load_state_dict_errors_list_every_bad_key() -> None:
    net = Net()
    sd = net.state_dict()
    del sd["block.scale"], sd["head.2.bias"]
    sd["extra.weight"] = cr.zeros(1)
    with pytest.raises(KeyError) as info:
        Net().load_state_dict(sd)
    message = str(info.value)
    for key in ("block.scale", "head.2.bias", "extra.weight"):
        assert key in message
    result = Net().load_state_dict(sd, strict=False)
    assert result.missing_keys == ["block.scale", "head.2.bias"]
    assert result.unexpected_keys == ["extra.weight"]

    wrong = net.state_dict()
    wrong["block.fc.weight"] = cr.zeros(3, 3)
    with pytest.raises(cr.ShapeError, match=r"block\.fc\.weight.*\(4, 3\).*\(3, 3\)"):
        Net().load_state_dict(wrong, strict=False)


def test_load_state_dict_accepts_arrays() -> None:
    layer = nn.Linear(2, 2)
    layer.load_state_dict({"weight": np.eye(2), "bias": np.array([1.0, 2.0])})
    np.testing.assert_array_equal(layer(cr.tensor([[3.0, 4.0]])).detach().numpy(), [[4.0, 6.0]])


def test_apply_visits_children_first_then_self() -> None:
    seen: list[str] = []
    Net().apply(lambda m: seen.append(type(m).__name__))
    assert seen == ["Linear", "Block", "ReLU", "Dropout", "Linear", "Sequential", "Net"]


def test_to_dtype_converts_in_place() -> None:
    net = Net()
    param = net.block.fc.weight
    net.to(cr.float64)
    assert net.block.fc.weight is param and param.dtype == np.float64
    assert net.block.running.dtype == np.float64
    out = net(cr.randn(2, 3, dtype=cr.float64))
    assert out.dtype == np.float64
    out.sum().backward()
    assert param.grad.dtype == np.float64
    net.float()
    assert param.dtype == np.float32 and param.grad.dtype == np.float32


def test_repr_tree() -> None:
    model = nn.Sequential(
        nn.Linear(784, 256), nn.ReLU(), nn.Dropout(0.2), nn.Sequential(nn.Linear(256, 10))
    )
    assert repr(model) == (
        "Sequential(\n"
        "  (0): Linear(in_features=784, out_features=256, bias=True)\n"
        "  (1): ReLU()\n"
        "  (2): Dropout(p=0.2)\n"
        "  (3): Sequential(\n"
        "    (0): Linear(in_features=256, out_features=10, bias=True)\n"
        "  )\n"
        ")"
    )


def test_forward_hooks_observe_and_replace() -> None:
    layer = nn.Linear(3, 2)
    seen = []
    handle = layer.register_forward_hook(lambda m, args, out: seen.append(out.shape))
    pre = layer.register_forward_pre_hook(lambda m, args: (args[0] * 0,))
    out = layer(cr.randn(4, 3))
    assert seen == [(4, 2)]
    bias = layer.bias.detach().numpy()
    np.testing.assert_allclose(out.detach().numpy(), np.broadcast_to(bias, (4, 2)))
    replace = layer.register_forward_hook(lambda m, args, out: out * 0)
    assert float(np.abs(layer(cr.randn(4, 3)).detach().numpy()).sum()) == 0.0
    for h in (handle, pre, replace):
        h.remove()
    layer(cr.randn(1, 3))
    assert seen == [(4, 2), (4, 2)]


def test_parameter_basics() -> None:
    p = nn.Parameter(cr.zeros(2))
    assert p.requires_grad and p.is_leaf and isinstance(p, cr.Tensor)
    assert repr(p).startswith("Parameter containing:\n")
    assert type(p * 2) is cr.Tensor
    assert not nn.Parameter(cr.zeros(2), requires_grad=False).requires_grad


def test_deepcopy_makes_independent_parameters() -> None:
    net = Net()
    clone = copy.deepcopy(net)
    clone.block.fc.weight.data[...] = 0
    assert float(np.abs(net.block.fc.weight.data).sum()) > 0
    assert [n for n, _ in clone.named_parameters()] == [n for n, _ in net.named_parameters()]


def test_module_list_and_dict() -> None:
    layers = nn.ModuleList([nn.Linear(2, 2) for _ in range(3)])
    assert len(layers) == 3 and len(list(layers.parameters())) == 6
    assert isinstance(layers[-1], nn.Linear)
    first_two = layers[:-1]  # PyTorch's rule: the same modules in a new list, keys from 0
    assert isinstance(first_two, nn.ModuleList) and len(first_two) == 2
    assert first_two[1] is layers[1] and list(first_two.state_dict()) == [
        "0.weight",
        "0.bias",
        "1.weight",
        "1.bias",
    ]
    assert [m for m in layers[::2]] == [layers[0], layers[2]]
    heads = nn.ModuleDict({"a": nn.Linear(2, 1), "b": nn.Linear(2, 3)})
    assert [n for n, _ in heads.named_parameters()] == ["a.weight", "a.bias", "b.weight", "b.bias"]
    assert "a" in heads and heads["b"].out_features == 3


def test_sequential_indexing_and_slicing() -> None:
    model = nn.Sequential(nn.Linear(2, 3), nn.ReLU(), nn.Linear(3, 1))
    assert isinstance(model[0], nn.Linear) and isinstance(model[-1], nn.Linear)
    head = model[:2]
    assert isinstance(head, nn.Sequential) and len(head) == 2
    assert head(cr.randn(4, 2)).shape == (4, 3)


def test_requires_grad_freezes() -> None:
    net = Net().requires_grad_(False)
    assert not any(p.requires_grad for p in net.parameters())
