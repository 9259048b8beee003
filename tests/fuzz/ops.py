"""How each op kind of a fuzz graph is written as Python, for chainrule and for torch.

A node is rendered to source text, and that text is what runs: the replay ``exec``s it and
a reproduction prints it, so a printed snippet is exactly what was compared. ``lib`` is
``"cr"`` (chainrule), ``"torch"`` (the reference) or ``"golden"`` (torch with every
tensor in float64: the near-exact values that float32 results are judged against).

Almost every op is spelt the same in both libraries (chainrule follows PyTorch's names);
the exceptions are explicit below: torch refuses negative slice steps (a flip first),
takes explicit dims where chainrule takes ``dim=None``, and has no ``.T`` beyond 2-D; its
``prod`` takes no ``dim=None``, ``torch.flip`` only a tuple of dims, and ``index_select``
only a tensor index (chainrule's also a list or a NumPy array, drawn too).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

Render = Callable[[str, list[str], dict[str, Any]], str]


def literal(a: np.ndarray) -> str:
    """``a`` as Python source that rebuilds it exactly (``tolist`` keeps every bit)."""
    return f"np.array({a.tolist()!r}, dtype=np.{a.dtype})"


def module(lib: str) -> str:
    return "cr" if lib == "cr" else "torch"


def _binary(symbol: str, name: str) -> Render:
    """``a + b``, ``cr.add(a, b)``, ``a.add(b)``, ``a + 2.5`` or ``2.5 + a``."""

    def render(lib: str, x: list[str], p: dict[str, Any]) -> str:
        form = p["form"]
        if form == "number-left":
            return f"({p['number']!r} {symbol} {x[0]})"
        if form == "number-right":
            return f"({x[0]} {symbol} {p['number']!r})"
        if form == "function":
            return f"{module(lib)}.{name}({x[0]}, {x[1]})"
        if form == "method":
            return f"{x[0]}.{name}({x[1]})"
        return f"({x[0]} {symbol} {x[1]})"

    return render


def _unary(name: str) -> Render:
    def render(lib: str, x: list[str], p: dict[str, Any]) -> str:
        if p.get("form") == "function":
            return f"{module(lib)}.{name}({x[0]})"
        return f"{x[0]}.{name}()"

    return render


def _neg(lib: str, x: list[str], p: dict[str, Any]) -> str:
    return f"(-{x[0]})" if p.get("form") == "operator" else f"{x[0]}.neg()"


def _softplus(lib: str, x: list[str], p: dict[str, Any]) -> str:
    return f"{module(lib)}.nn.functional.softplus({x[0]})"


def _maximum(lib: str, x: list[str], p: dict[str, Any]) -> str:
    name = p["name"]  # maximum or minimum
    if p["form"] == "method":
        return f"{x[0]}.{name}({x[1]})"
    if p["form"] == "max":  # torch.max(a, b) is the elementwise maximum
        return f"{x[0]}.{'max' if name == 'maximum' else 'min'}({x[1]})"
    return f"{module(lib)}.{name}({x[0]}, {x[1]})"


def _where(lib: str, x: list[str], p: dict[str, Any]) -> str:
    m = module(lib)
    if "mask" in p:
        condition = f"{m}.from_numpy({literal(p['mask'])})"
        rest = x
    else:  # a comparison of a third value with a threshold
        condition = f"({x[0]} > {p['threshold']!r})"
        rest = x[1:]
    a = rest[0]
    b = rest[1] if len(rest) > 1 else repr(p["number"])
    return f"{m}.where({condition}, {a}, {b})"


def _clamp(lib: str, x: list[str], p: dict[str, Any]) -> str:
    lo, hi = p["min"], p["max"]
    if p["form"] == "function":
        return f"{module(lib)}.clamp({x[0]}, {lo!r}, {hi!r})"
    if lo is None:
        return f"{x[0]}.clamp(max={hi!r})"
    if hi is None:
        return f"{x[0]}.clamp(min={lo!r})"
    return f"{x[0]}.clamp({lo!r}, {hi!r})"


def _matmul(lib: str, x: list[str], p: dict[str, Any]) -> str:
    if p["form"] == "function":
        return f"{module(lib)}.matmul({x[0]}, {x[1]})"
    if p["form"] == "method":
        return f"{x[0]}.matmul({x[1]})"
    return f"({x[0]} @ {x[1]})"


def _einsum(lib: str, x: list[str], p: dict[str, Any]) -> str:
    return f"{module(lib)}.einsum({p['equation']!r}, {', '.join(x)})"


def _split(lib: str, x: list[str], p: dict[str, Any]) -> str:
    how, d, k = p["how"], p["dim"], p["pick"]
    if how == "size":
        return f"{x[0]}.split({p['size']!r}, {d!r})[{k}]"
    if how == "sections":
        return f"{x[0]}.split({p['sections']!r}, {d!r})[{k}]"
    if how == "chunk":
        return f"{x[0]}.chunk(2, {d!r})[{k}]"
    return f"{x[0]}.unbind({d!r})[{k}]"


def _cumsum(lib: str, x: list[str], p: dict[str, Any]) -> str:
    if p["form"] == "function":
        return f"{module(lib)}.cumsum({x[0]}, {p['dim']!r})"
    return f"{x[0]}.cumsum({p['dim']!r})"


def _reduce(lib: str, x: list[str], p: dict[str, Any]) -> str:
    """sum, mean, amax, amin, logsumexp, var, std over ``dim`` (None: every dim)."""
    name, dim, keepdim = p["name"], p["dim"], p["keepdim"]
    if dim is None and lib != "cr":
        dim = tuple(range(p["ndim"]))  # torch's amax/logsumexp need the dims spelt out
    extra = f", unbiased={p['unbiased']!r}" if name in ("var", "std") else ""
    return f"{x[0]}.{name}(dim={dim!r}{extra}, keepdim={keepdim!r})"


def _max_all(lib: str, x: list[str], p: dict[str, Any]) -> str:
    return f"{x[0]}.{p['name']}()"


def _max_dim(lib: str, x: list[str], p: dict[str, Any]) -> str:
    if p["form"] == "function":
        return f"{module(lib)}.{p['name']}({x[0]}, {p['dim']!r}, {p['keepdim']!r})[0]"
    return f"{x[0]}.{p['name']}(dim={p['dim']!r}, keepdim={p['keepdim']!r}).values"


def _softmax(lib: str, x: list[str], p: dict[str, Any]) -> str:
    if p["form"] == "function":
        return f"{module(lib)}.{p['name']}({x[0]}, {p['dim']!r})"
    return f"{x[0]}.{p['name']}(dim={p['dim']!r})"


def _reshape(lib: str, x: list[str], p: dict[str, Any]) -> str:
    how, arg = p["how"], p["arg"]
    if how == "reshape":
        return f"{x[0]}.reshape({arg!r})"
    if how == "reshape_function":
        return f"{module(lib)}.reshape({x[0]}, {arg!r})"
    if how == "flatten":
        return f"{x[0]}.flatten({arg[0]!r}, {arg[1]!r})"
    if how == "squeeze_all":
        return f"{x[0]}.squeeze()"
    return f"{x[0]}.{how}({arg!r})"  # unsqueeze(d), squeeze(d)


def _permute(lib: str, x: list[str], p: dict[str, Any]) -> str:
    how, arg = p["how"], p["arg"]
    if how == "permute":
        return f"{x[0]}.permute{tuple(arg)!r}"
    if how == "transpose":
        return f"{x[0]}.transpose({arg[0]!r}, {arg[1]!r})"
    return f"{x[0]}.{how}"  # T (at most 2-D) or mT


def _expand(lib: str, x: list[str], p: dict[str, Any]) -> str:
    return f"{x[0]}.expand{tuple(p['sizes'])!r}"


def _index_item(item: Any) -> str:
    if item is None:
        return "None"
    if item is Ellipsis:
        return "..."
    if isinstance(item, slice):
        text = "" if item.start is None else str(item.start)
        text += ":" + ("" if item.stop is None else str(item.stop))
        return text + ("" if item.step is None else f":{item.step}")
    return repr(item)


def _index_text(items: list[Any]) -> str:
    if not items:
        return "()"
    return ", ".join(_index_item(i) for i in items) + ("," if len(items) == 1 else "")


def _positive_steps(index: tuple[Any, ...], shape: tuple[int, ...]) -> tuple[list[int], list[Any]]:
    """torch's spelling of a basic index with negative steps: the dims to flip first, and
    the index on the flipped tensor (Ellipsis spelt out; each negative-step slice turned
    into the same elements of the flipped dim, with a positive step)."""
    consumed = sum(1 for i in index if i is not None and i is not Ellipsis)
    items: list[Any] = []
    for item in index:
        if item is Ellipsis:
            items.extend([slice(None)] * (len(shape) - consumed))
        else:
            items.append(item)
    flips: list[int] = []
    dim = 0
    out: list[Any] = []
    for item in items:
        if item is None:
            out.append(None)
            continue
        if isinstance(item, slice) and item.step is not None and item.step < 0:
            n = shape[dim]
            picked = range(n)[item]
            first, last = n - 1 - picked[0], n - 1 - picked[-1]
            out.append(slice(first, last + 1, -item.step))
            flips.append(dim)
        else:
            out.append(item)
        dim += 1
    return flips, out


def _index_basic(lib: str, x: list[str], p: dict[str, Any]) -> str:
    index = p["index"]
    has_negative = any(isinstance(i, slice) and (i.step or 1) < 0 for i in index)
    if lib == "cr" or not has_negative:
        return f"{x[0]}[{_index_text(list(index))}]"
    flips, items = _positive_steps(index, p["shape"])
    return f"{x[0]}.flip({tuple(flips)!r})[{_index_text(items)}]"


def _index_array(lib: str, a: np.ndarray, how: str) -> str:
    """An index array as chainrule takes it (a NumPy array, a list, an int or bool tensor)
    and as torch does (a list or a tensor)."""
    if how == "list":
        return repr(a.tolist())
    if how == "tensor" or lib != "cr":
        return f"{module(lib)}.from_numpy({literal(a)})"
    return literal(a)


def _index_advanced(lib: str, x: list[str], p: dict[str, Any]) -> str:
    items = [
        _index_array(lib, i, p["how"]) if isinstance(i, np.ndarray) else _index_item(i)
        for i in p["index"]
    ]
    return f"{x[0]}[{', '.join(items)}{',' if len(items) == 1 else ''}]"


def _join(lib: str, x: list[str], p: dict[str, Any]) -> str:
    return f"{module(lib)}.{p['name']}([{', '.join(x)}], dim={p['dim']!r})"


def _cast(lib: str, x: list[str], p: dict[str, Any]) -> str:
    to = "float64" if lib == "golden" else p["to"]
    if p["form"] == "to":
        return f"{x[0]}.to({module(lib)}.{to})"
    return f"{x[0]}.{'double' if to == 'float64' else 'float'}()"


def _clone(lib: str, x: list[str], p: dict[str, Any]) -> str:
    return f"{x[0]}.clone()"


# -- rearranging (roll … narrow), prod, norm, and nn.functional's pad/interpolate/pools ---
def _roll(lib: str, x: list[str], p: dict[str, Any]) -> str:
    shifts, dims = p["shifts"], p["dims"]
    if p["form"] == "keywords":
        dims_text = "" if dims is None else f", dims={dims!r}"
        return f"{x[0]}.roll(shifts={shifts!r}{dims_text})"
    args = repr(shifts) + ("" if dims is None else f", {dims!r}")
    if p["form"] == "function":
        return f"{module(lib)}.roll({x[0]}, {args})"
    return f"{x[0]}.roll({args})"


def _flip(lib: str, x: list[str], p: dict[str, Any]) -> str:
    dims = tuple(p["dims"])
    if p["form"] == "function":  # torch.flip takes a tuple only
        return f"{module(lib)}.flip({x[0]}, {dims!r})"
    if p["form"] == "varargs":
        return f"{x[0]}.flip({', '.join(repr(d) for d in dims)})"
    return f"{x[0]}.flip({dims!r})"


def _triangle(lib: str, x: list[str], p: dict[str, Any]) -> str:
    name, k = p["name"], p["diagonal"]  # tril or triu
    if p["form"] == "function":
        return f"{module(lib)}.{name}({x[0]}, diagonal={k!r})"
    if p["form"] == "default":
        return f"{x[0]}.{name}()"
    return f"{x[0]}.{name}({k!r})"


def _repeat(lib: str, x: list[str], p: dict[str, Any]) -> str:
    """``Tensor.repeat`` and ``tile`` (``torch.tile``: there is no ``torch.repeat``)."""
    name, sizes = p["name"], tuple(p["sizes"])
    if p["form"] == "function":
        return f"{module(lib)}.tile({x[0]}, {sizes!r})"
    if p["form"] == "tuple":
        return f"{x[0]}.{name}({sizes!r})"
    return f"{x[0]}.{name}({', '.join(repr(s) for s in sizes)})"


def _repeat_interleave(lib: str, x: list[str], p: dict[str, Any]) -> str:
    r = p["repeats"]
    repeats = repr(r) if isinstance(r, int) else f"{module(lib)}.from_numpy({literal(r)})"
    dim = "" if p["dim"] is None else f", dim={p['dim']!r}"
    if p["form"] == "function":
        return f"{module(lib)}.repeat_interleave({x[0]}, {repeats}{dim})"
    return f"{x[0]}.repeat_interleave({repeats}{dim})"


def _index_select(lib: str, x: list[str], p: dict[str, Any]) -> str:
    """The index as a tensor (torch takes nothing else), or for chainrule also as a
    NumPy array or a list."""
    index, how = p["index"], p["how"]
    if how == "list" and lib == "cr":
        text = repr(index.tolist())
    elif how == "numpy" and lib == "cr":
        text = literal(index)
    else:
        text = f"{module(lib)}.from_numpy({literal(index)})"
    if p["form"] == "function":
        return f"{module(lib)}.index_select({x[0]}, {p['dim']!r}, {text})"
    return f"{x[0]}.index_select({p['dim']!r}, {text})"


def _narrow(lib: str, x: list[str], p: dict[str, Any]) -> str:
    args = f"{p['dim']!r}, {p['start']!r}, {p['length']!r}"
    if p["form"] == "function":
        return f"{module(lib)}.narrow({x[0]}, {args})"
    return f"{x[0]}.narrow({args})"


def _prod(lib: str, x: list[str], p: dict[str, Any]) -> str:
    """``prod()`` or ``prod(dim, keepdim)`` (torch's prod takes no ``dim=None``), maybe
    with ``dtype=float64``."""
    m = module(lib)
    args = [] if p["dim"] is None else [repr(p["dim"]), f"keepdim={p['keepdim']!r}"]
    if p["dtype"]:
        args.append(f"dtype={m}.float64")
    if p["form"] == "function":
        return f"{m}.prod({', '.join([x[0], *args])})"
    return f"{x[0]}.prod({', '.join(args)})"


def _norm_p(p: Any) -> str:
    if isinstance(p, float) and np.isinf(p):
        return "float('inf')" if p > 0 else "float('-inf')"
    return repr(p)


def _norm(lib: str, x: list[str], p: dict[str, Any]) -> str:
    order, dim, keepdim = _norm_p(p["p"]), p["dim"], p["keepdim"]
    form = p["form"]
    if form == "default":  # the 2-norm of every element
        return f"{x[0]}.norm()"
    if form == "function":
        return f"{module(lib)}.norm({x[0]}, {order}, {dim!r}, {keepdim!r})"
    if form == "keywords":
        return f"{x[0]}.norm(p={order}, dim={dim!r}, keepdim={keepdim!r})"
    return f"{x[0]}.norm({order}, {dim!r}, {keepdim!r})"


def _functional(lib: str) -> str:
    return f"{module(lib)}.nn.functional"


def _pad(lib: str, x: list[str], p: dict[str, Any]) -> str:
    widths = tuple(p["pad"]) if p["as_tuple"] else list(p["pad"])
    mode = "" if p["mode"] == "constant" and p["implicit"] else f", mode={p['mode']!r}"
    value = "" if p["value"] is None else f", value={p['value']!r}"
    return f"{_functional(lib)}.pad({x[0]}, {widths!r}{mode}{value})"


def _interpolate(lib: str, x: list[str], p: dict[str, Any]) -> str:
    args = [x[0]]
    if p["size"] is not None:
        args.append(f"size={p['size']!r}")
    else:
        args.append(f"scale_factor={p['scale_factor']!r}")
    args.append(f"mode={p['mode']!r}")
    if p["align_corners"] is not None:
        args.append(f"align_corners={p['align_corners']!r}")
    if p["recompute"]:
        args.append("recompute_scale_factor=True")
    return f"{_functional(lib)}.interpolate({', '.join(args)})"


def _pool1d(lib: str, x: list[str], p: dict[str, Any]) -> str:
    """``max_pool1d`` (maybe with ``return_indices``: the values) or ``avg_pool1d``."""
    name = p["name"]
    args = [x[0], repr(p["kernel"])]
    if p["stride"] is not None:
        args.append(f"stride={p['stride']!r}")
    if p["padding"]:
        args.append(f"padding={p['padding']!r}")
    if name == "max_pool1d":
        if p["dilation"] != 1:
            args.append(f"dilation={p['dilation']!r}")
        if p["indices"]:
            return f"{_functional(lib)}.max_pool1d({', '.join(args)}, return_indices=True)[0]"
    elif not p["count_include_pad"]:
        args.append("count_include_pad=False")
    return f"{_functional(lib)}.{name}({', '.join(args)})"


RENDER: dict[str, Render] = {
    "add": _binary("+", "add"),
    "sub": _binary("-", "sub"),
    "mul": _binary("*", "mul"),
    "div": _binary("/", "div"),
    "pow": _binary("**", "pow"),
    "neg": _neg,
    "exp": _unary("exp"),
    "log": _unary("log"),
    "sqrt": _unary("sqrt"),
    "abs": _unary("abs"),
    "relu": _unary("relu"),
    "sigmoid": _unary("sigmoid"),
    "tanh": _unary("tanh"),
    "sin": _unary("sin"),
    "cos": _unary("cos"),
    "softplus": _softplus,
    "maximum": _maximum,
    "where": _where,
    "clamp": _clamp,
    "matmul": _matmul,
    "einsum": _einsum,
    "cumsum": _cumsum,
    "reduce": _reduce,
    "max_all": _max_all,
    "max_dim": _max_dim,
    "softmax": _softmax,
    "reshape": _reshape,
    "permute": _permute,
    "expand": _expand,
    "index_basic": _index_basic,
    "index_advanced": _index_advanced,
    "join": _join,
    "split": _split,
    "cast": _cast,
    "clone": _clone,
    "roll": _roll,
    "flip": _flip,
    "triangle": _triangle,
    "repeat": _repeat,
    "repeat_interleave": _repeat_interleave,
    "index_select": _index_select,
    "narrow": _narrow,
    "prod": _prod,
    "norm": _norm,
    "pad": _pad,
    "interpolate": _interpolate,
    "pool1d": _pool1d,
}


def label(kind: str, params: dict[str, Any]) -> str:
    """The name a node is counted under in the campaign's figures (``reduce`` → ``amax``)."""
    if kind in ("reduce", "max_all", "max_dim", "softmax", "join", "triangle", "repeat", "pool1d"):
        return f"{params['name']}" + ("(dim)" if kind == "max_dim" else "")
    if kind == "maximum":
        return params["name"]
    return kind
