"""One seedable source behind all of chainrule's randomness.

``cr.manual_seed(s)`` reseeds the default generator; ``randn``, ``rand``, ``nn.init``,
``Dropout`` and ``DataLoader`` shuffling all draw from it unless given a ``Generator`` of
their own, so a seed reproduces a whole run bit for bit. A generator's state is a plain
dictionary of integers, saved in checkpoints so a resumed run continues the same stream.
"""

from __future__ import annotations

import json
from typing import Any

import numpy

from chainrule.backend import xp


class Generator:
    """A random stream (NumPy's PCG64) that can be seeded, saved and restored.

    Args:
        seed: the initial seed; ``None`` draws one from the operating system.

    Example:
        >>> g = Generator(0)
        >>> a = g.standard_normal((2,))
        >>> g.manual_seed(0)
        Generator(seed=0)
        >>> bool((a == g.standard_normal((2,))).all())
        True
    """

    def __init__(self, seed: int | None = None) -> None:
        self.manual_seed(seed)

    def manual_seed(self, seed: int | None) -> Generator:
        """Restart the stream from ``seed``; returns self."""
        if seed is None:
            entropy = numpy.random.SeedSequence().entropy  # an int when drawn from the OS
            assert isinstance(entropy, int)
            seed = entropy % (2**63)
        if not isinstance(seed, (int, numpy.integer)) or seed < 0:
            raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
        self._seed = int(seed)
        self._rng = numpy.random.Generator(numpy.random.PCG64(self._seed))
        return self

    def initial_seed(self) -> int:
        """The seed this stream was last started from."""
        return self._seed

    def get_state(self) -> dict[str, Any]:
        """The stream's position, as JSON-ready plain data."""
        state = self._rng.bit_generator.state
        return {"seed": self._seed, "bit_generator": json.loads(json.dumps(state))}

    def set_state(self, state: dict[str, Any]) -> None:
        """Continue from a position returned by ``get_state``."""
        self._seed = int(state["seed"])
        self._rng = numpy.random.Generator(numpy.random.PCG64())
        self._rng.bit_generator.state = state["bit_generator"]

    # The draws. They return arrays of the backend; float draws are made directly in the
    # requested dtype so float32 and float64 streams are each reproducible.
    def standard_normal(self, shape: tuple[int, ...], dtype: Any = numpy.float32) -> Any:
        return xp.asarray(self._rng.standard_normal(shape, dtype=dtype))

    def random(self, shape: tuple[int, ...], dtype: Any = numpy.float32) -> Any:
        return xp.asarray(self._rng.random(shape, dtype=dtype))

    def integers(self, low: int, high: int, shape: tuple[int, ...] | int) -> Any:
        return xp.asarray(self._rng.integers(low, high, shape))

    def permutation(self, n: int) -> Any:
        return self._rng.permutation(n)

    def __repr__(self) -> str:
        return f"Generator(seed={self._seed})"


default_generator = Generator(0)
"""The generator used when none is passed. Seeded with 0 at import for reproducibility."""


def manual_seed(seed: int) -> Generator:
    """Reseed the default generator, so everything random in a run repeats bit for bit."""
    return default_generator.manual_seed(seed)


def initial_seed() -> int:
    """The seed the default generator was last started from."""
    return default_generator.initial_seed()


def get_rng_state() -> dict[str, Any]:
    """The default generator's state (plain data, for checkpoints)."""
    return default_generator.get_state()


def set_rng_state(state: dict[str, Any]) -> None:
    """Restore the default generator to a state from ``get_rng_state``."""
    default_generator.set_state(state)


def resolve(generator: Generator | None) -> Generator:
    """The generator to draw from: the one given, or the default one."""
    return default_generator if generator is None else generator
