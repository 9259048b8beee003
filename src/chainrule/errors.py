"""The exceptions chainrule raises.

Each is a subclass of the built-in exception a Python user would expect to catch
(``ValueError`` for bad shapes, ``TypeError`` for bad dtypes, ``RuntimeError`` for misuse
of the graph), so ``except ValueError`` keeps working; the subclasses let tests and tools
tell chainrule's own checks apart.
"""

from __future__ import annotations

import warnings


class ShapeError(ValueError):
    """Shapes that do not fit together. The message names the op and every shape."""


class DTypeError(TypeError):
    """A dtype that the operation cannot take. The message says what to cast to."""


class DeviceError(RuntimeError):
    """A tensor on the wrong device, two devices mixed in one op, or a GPU asked for on a
    machine without one (the message says what to install)."""


class GraphError(RuntimeError):
    """Misuse of the autograd graph: a freed graph, a stale saved tensor, a missing grad."""


class GradcheckError(RuntimeError):
    """Analytic and numeric gradients disagree (raised by ``autograd.gradcheck``)."""


class AnomalyError(RuntimeError):
    """A backward produced NaN or Inf while ``autograd.detect_anomaly`` was on."""


class GraphGrowthWarning(UserWarning):
    """A graph kept alive across backward passes, e.g. ``total = total + loss`` in a loop:
    every iteration's graph stays in memory. Accumulate ``loss.item()`` instead."""


def warn_graph_growth() -> None:
    """Warn that an addition extends a freed graph (``Tensor.__add__`` calls this)."""
    warnings.warn(
        "this addition extends a graph that a backward pass has already freed: a tensor "
        "summed across iterations (total = total + loss) keeps every iteration's graph "
        "alive, so memory grows each step, and it can never be backpropagated. Accumulate "
        "a number instead (total += loss.item()), or loss.detach() if you need a tensor.",
        GraphGrowthWarning,
        stacklevel=3,  # the user's line: past __add__ and this function
    )
