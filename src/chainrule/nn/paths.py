"""Naming the module that failed: shape errors carry the module's dotted path in the model.

A module that detects a bad input raises ``module_shape_error(self, detail)``; any other
``ShapeError`` raised inside a module is claimed by the innermost module it passes. On the
way out, each enclosing ``Module.__call__`` rewrites the message with the culprit's path
from itself, so the outermost call leaves ``model.2 (Linear(...)) expected input (..., 256),
got (32, 100)``. Nothing here runs unless an error is propagating.
"""

from __future__ import annotations

from typing import Any

from chainrule.errors import ShapeError

ROOT_NAME = "model"
"""How errors name the outermost module of a call (``model.2`` is its child ``2``)."""


def locate(root: Any, exc: ShapeError) -> None:
    """Rewrite ``exc``'s message to name the failing module by its path from ``root``.

    The innermost module that sees the error records itself as the culprit; each outer
    ``__call__`` recomputes the path, so the message the user reads has the path from the
    outermost model. Runs only while an error propagates.
    """
    culprit = getattr(exc, "_cr_module", None)
    if culprit is None:
        culprit = root
        exc._cr_module = root  # type: ignore[attr-defined]
        exc._cr_detail = (  # type: ignore[attr-defined]
            getattr(exc, "_cr_detail", None) or f": {exc}"
        )
    path = next((name for name, m in root.named_modules() if m is culprit), None)
    if path is None:
        return
    where = f"{ROOT_NAME}.{path}" if path else ROOT_NAME
    exc.args = (f"{where} ({culprit.short_repr()}){exc._cr_detail}",)  # type: ignore[attr-defined]


def module_shape_error(module: Any, detail: str) -> ShapeError:
    """A ShapeError from ``module`` whose message the enclosing calls complete with the
    module's dotted path, e.g. ``model.2 (Linear(...)) expected input (..., 256), got …``.
    """
    exc = ShapeError(f"{module.short_repr()} {detail}")
    exc._cr_module = module  # type: ignore[attr-defined]
    exc._cr_detail = " " + detail  # type: ignore[attr-defined]
    return exc
