"""A failing graph as a script anyone can run: the same source the replay ran, the same
inputs (every bit) and the same projection weights, then an assertion that fails."""

from __future__ import annotations

from .graphs import Graph, Leaf
from .replay import Mismatch


def _assertion(m: Mismatch, names: list[str], leaves: list[str], loose: bool) -> list[str]:
    tol = "rtol=1e-4, atol=1e-5" if loose else "rtol=1e-10, atol=1e-10"
    if m.category in ("forward", "dtype"):
        i = names.index(m.where)
        if m.category == "dtype":
            return [f"assert str(ours[{i}].dtype) == str(ref[{i}].dtype).removeprefix('torch.')"]
        return [
            f"np.testing.assert_allclose(ours[{i}].detach().numpy(), ref[{i}].detach().numpy(), "
            f"{tol})"
        ]
    if m.category.startswith("grad") and m.where.startswith("d/d"):
        k = leaves.index(m.where.removeprefix("d/d"))
        g = "g2" if m.category.startswith("grad2") else "g"
        if m.category.endswith("dtype"):
            return [
                f"assert str({g}_cr[{k}].dtype) == str({g}_t[{k}].dtype).removeprefix('torch.')"
            ]
        return [
            f"np.testing.assert_allclose({g}_cr[{k}].detach().numpy(), "
            f"{g}_t[{k}].detach().numpy(), {tol})"
        ]
    return [f"# {m}"]


def snippet(graph: Graph, mismatches: list[Mismatch]) -> str:
    """A standalone script reproducing ``mismatches`` (the first one is asserted)."""
    names = [f"x{i}" if isinstance(s, Leaf) else f"v{i}" for i, s in enumerate(graph.steps)]
    leaf_ids = [i for i, s in enumerate(graph.steps) if isinstance(s, Leaf)]
    grad_leaves = [names[i] for i in leaf_ids if graph.steps[i].requires_grad]  # type: ignore[union-attr]
    flags = [graph.steps[i].requires_grad for i in leaf_ids]  # type: ignore[union-attr]
    xs = ", ".join(names[i] for i in leaf_ids)
    loose = graph.has_float32()
    head = "\n".join(f"# {m}" for m in mismatches[:5])
    lines = [
        f'"""chainrule vs torch, fuzz graph of seed {graph.seed} (shrunk)."""',
        head,
        "import numpy as np",
        "import torch",
        "",
        "import chainrule as cr",
        "",
        *[graph.steps[i].source(names[i]) for i in leaf_ids],  # type: ignore[union-attr]
        "",
        graph.source("cr"),
        "",
        graph.source("torch"),
        "",
        f"flags = {flags!r}",
        f"xs_cr = [cr.Tensor(x, requires_grad=r) for x, r in zip([{xs}], flags)]",
        "xs_t = [torch.tensor(np.array(x, order='C'), requires_grad=r)",
        f"        for x, r in zip([{xs}], flags)]",
        "ours, ref = graph_cr(*xs_cr), graph_torch(*xs_t)",
        f"outputs = {graph.outputs!r}",
        "outputs = [i for i in outputs if ref[i].requires_grad]",
        f"ws = [np.asarray(np.random.default_rng([{graph.seed}, k]).standard_normal(ref[i].shape))",
        "      for k, i in enumerate(outputs)]",
        "xs_cr_grad = [x for x in xs_cr if x.requires_grad]",
        "xs_t_grad = [x for x in xs_t if x.requires_grad]",
        "ws_cr = [cr.tensor(w.astype(str(ours[i].dtype))) for w, i in zip(ws, outputs)]",
        "ws_t = [torch.tensor(w, dtype=ref[i].dtype) for w, i in zip(ws, outputs)]",
        "g_cr = cr.autograd.grad([ours[i] for i in outputs], xs_cr_grad, ws_cr,",
        f"                        allow_unused=True, create_graph={graph.second_order!r})",
        "g_t = torch.autograd.grad([ref[i] for i in outputs], xs_t_grad, ws_t,",
        f"                          allow_unused=True, create_graph={graph.second_order!r})",
    ]
    if graph.second_order:
        lines += [
            "",
            "def second(lib, gs, xs):  # d/dx ⟨∇L, v⟩",
            f"    vs = [np.asarray(np.random.default_rng([{graph.seed}, 1000 + k])"
            ".standard_normal(g.shape)) for k, g in enumerate(gs) if g is not None]",
            "    gs = [g for g in gs if g is not None]",
            "    terms = [(g * lib.tensor(v.astype(str(g.dtype).removeprefix('torch.')))).sum()",
            "             for g, v in zip(gs, vs) if g.requires_grad]",
            "    total = sum(terms[1:], terms[0])",
            "    grad = cr.autograd.grad if lib is cr else torch.autograd.grad",
            "    return grad(total, [x for x in xs if x.requires_grad], allow_unused=True)",
            "",
            "g2_cr, g2_t = second(cr, g_cr, xs_cr), second(torch, g_t, xs_t)",
        ]
    lines += ["", *_assertion(mismatches[0], names, grad_leaves, loose)] if mismatches else []
    return "\n".join(lines) + "\n"
