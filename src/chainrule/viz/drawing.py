"""``draw``: the forward graph of one computation and its gradient graph, side by side."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from chainrule.autograd import grad as _grad
from chainrule.tensor import Tensor
from chainrule.viz.collapse import add_clusters, collapse
from chainrule.viz.dot import to_dot
from chainrule.viz.ir import OP, Picture
from chainrule.viz.record import record
from chainrule.viz.trace import Walker

FORMATS = ("svg", "png", "pdf", "dot")


class Drawing:
    """A drawing as DOT text, rendered to SVG, PNG or PDF by Graphviz on demand.

    Attributes:
        source: the DOT text (needs nothing installed).
        picture: the boxes and wires behind it.

    In Jupyter a ``Drawing`` shows itself inline as SVG (``_repr_mimebundle_``); without
    Graphviz's ``dot`` it shows the DOT text.
    """

    def __init__(self, source: str, picture: Picture | None = None) -> None:
        self.source = source
        self.picture = picture

    def pipe(self, format: str = "svg") -> bytes:
        """The rendered bytes in ``format`` (``svg``, ``png``, ``pdf``; ``dot``: the text).

        Raises:
            ImportError: the ``graphviz`` package is missing (``pip install graphviz``).
            RuntimeError: Graphviz's ``dot`` program is missing (``apt-get install
                graphviz`` on Debian/Ubuntu, ``brew install graphviz`` on macOS).
        """
        if format not in FORMATS:
            raise ValueError(f"viz: format must be one of {', '.join(FORMATS)}; got {format!r}")
        if format == "dot":
            return self.source.encode("utf-8")
        try:
            import graphviz
        except ImportError as exc:
            raise ImportError(
                "viz: rendering needs the graphviz package (pip install 'chainrule[viz]'); "
                "Drawing.source holds the DOT text without it"
            ) from exc
        try:
            data: bytes = graphviz.Source(self.source).pipe(format=format)
        except graphviz.ExecutableNotFound as exc:
            raise RuntimeError(
                "viz: Graphviz's `dot` program is not installed (apt-get install graphviz, or "
                "brew install graphviz); Drawing.source holds the DOT text without it"
            ) from exc
        return data

    def render(self, path: str | os.PathLike[str], format: str | None = None) -> Path:
        """Write the drawing to ``path`` atomically; the format defaults to its suffix.

        Returns:
            The path written.
        """
        path = Path(path)
        fmt = format or path.suffix.lstrip(".").lower() or "svg"
        write_bytes_atomic(path, self.pipe(fmt))
        return path

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, Any]:
        try:
            return {"image/svg+xml": self.pipe("svg").decode("utf-8")}
        except (ImportError, RuntimeError):
            return {"text/plain": self.source}

    def _repr_svg_(self) -> str | None:
        return self._repr_mimebundle_().get("image/svg+xml")

    def __repr__(self) -> str:
        return f"<Drawing: {self.source.count('->')} wires; .source, .render(path)>"


def write_bytes_atomic(path: Path, payload: bytes) -> None:
    """Write ``payload`` so that readers see the old file or the new one, never half."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, 0o644)  # mkstemp makes 0600 files; a figure is for everyone to read
        with os.fdopen(fd, "wb") as f:
            f.write(payload)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def draw(
    output: Tensor | Sequence[Tensor],
    params: Mapping[str, Tensor] | None = None,
    *,
    trace: record | None = None,
    depth: int | None = None,
    values: bool = False,
    title: str = "",
) -> Drawing:
    """Draw the forward graph that produced ``output`` and its gradient graph side by side.

    The forward half shows each op with its output's shape and dtype, and the leaves by
    name; the gradient half mirrors it, each box showing the VJP its op applies and the
    shape of its local Jacobian, the lecture's M×N (``∂y/∂x: (32·10)×(32·256)`` for a
    (32, 256) → (32, 10) op). A value read by several ops is drawn as the lecture's
    Duplicate, and its gradient as the sum Σ of the gradients that come back.

    Args:
        output: the tensor (or tensors) whose graph to draw, before ``backward`` frees
            it (or after ``backward(retain_graph=True)``).
        params: names for leaf tensors, e.g. ``dict(model.named_parameters())`` or
            ``{"x": x, "w": w}``; otherwise a tensor's ``.name``, or the names recorded by
            ``trace``.
        trace: a ``viz.record`` of the forward pass: groups the ops into one cluster per
            module and names parameters by their path (``model.0.weight``).
        depth: with ``trace``, collapse each module at this nesting level into one box
            (``model`` is level 0, ``model.0`` level 1).
        values: also show each value's norm ‖y‖ and its gradient's norm ‖∂L/∂y‖, computed
            with ``autograd.grad(..., retain_graph=True)`` so the user's graph and
            ``.grad`` fields are left as they were. ``output`` must be a scalar.
        title: a caption above the drawing.

    Returns:
        A ``Drawing``: ``.source`` (DOT), ``.render("graph.svg")``, inline in Jupyter.

    Example:
        >>> import chainrule as cr
        >>> from chainrule import viz
        >>> x = cr.randn(4, 3, requires_grad=True)
        >>> w = cr.randn(3, 2, requires_grad=True)
        >>> d = viz.draw((x @ w).relu().sum(), params={"x": x, "w": w})
        >>> "∂Y/∂A: (4·2)×(4·3)" in d.source
        True
    """
    roots = [output] if isinstance(output, Tensor) else list(output)
    if not roots or not all(isinstance(r, Tensor) for r in roots):
        raise TypeError("viz.draw: output must be a Tensor or a sequence of Tensors")
    names: dict[int, str] = dict(trace.param_names) if trace is not None else {}
    for name, t in (params or {}).items():
        names[id(t)] = name
    walker = Walker(names, trace)
    walker.walk(roots)
    picture = walker.finish(roots, seed=True)
    if values:
        _annotate(picture, walker, roots)
    if depth is not None:
        if trace is None:
            raise ValueError(
                "viz.draw: depth= collapses modules, which needs the modules recorded: "
                "run the forward pass inside `with viz.record(model) as trace:` and pass "
                "trace=trace"
            )
        picture = collapse(picture, trace, depth)
    add_clusters(picture, trace)
    return Drawing(to_dot(picture, title), picture)


def _annotate(picture: Picture, walker: Walker, roots: list[Tensor]) -> None:
    """Write ‖value‖ and ‖gradient‖ on each box, from one extra backward pass."""
    if len(roots) != 1 or roots[0].numel() != 1:
        raise ValueError(
            "viz.draw(values=True) needs one scalar output (a loss) to take gradients of; "
            f"got {len(roots)} output(s) of shape {[tuple(r.shape) for r in roots]}"
        )
    keys = [k for k, t in walker.tensors.items() if t.requires_grad]
    tensors = [walker.tensors[k] for k in keys]
    grads = _grad(roots[0], tensors, retain_graph=True, allow_unused=True)
    by_key = {b.key: b for b in picture.boxes}
    for (key, index), t in walker.tensors.items():
        box = by_key.get(key)
        if box is None or (box.kind == OP and index != 0):
            continue
        box.value_note = f"‖y‖ = {_norm(t.data):.3g}"
    for (key, index), g in zip(keys, grads):
        box = by_key.get(key)
        if box is not None and g is not None and index == 0:
            box.grad_note = f"‖∂L/∂y‖ = {_norm(g.data):.3g}"


def _norm(array: Any) -> float:
    return float((array.astype("float64") ** 2).sum() ** 0.5)
