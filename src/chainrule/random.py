"""One seedable source behind all of chainrule's randomness, on the CPU and on GPUs.

``cr.manual_seed(s)`` reseeds the default generator; ``randn``, ``rand``, ``nn.init``,
``Dropout`` and ``DataLoader`` shuffling all draw from it unless given a ``Generator`` of
their own, so a seed reproduces a whole run bit for bit. A generator's state is a plain
dictionary of integers, saved in checkpoints so a resumed run continues the same stream.

Host and device streams. A ``Generator`` draws host values from NumPy's PCG64, seeded
with its seed. Draws asked for on a GPU (``device="cuda"``) come from a stream on that
GPU (CuPy's cuRAND ``RandomState``, ``backend.accelerator().random_stream``), so a dropout
mask or a weight initialisation never crosses the bus. Each GPU's stream is derived
deterministically from the generator's seed and the GPU's index, so ``cr.manual_seed(s)``
reseeds the GPUs too (as ``torch.manual_seed`` seeds CUDA); ``cr.cuda.manual_seed`` and
``cr.cuda.manual_seed_all`` reseed only the GPU streams.

For the code that draws (``nn.Dropout``, ``nn.init``, data augmentation), the API is:

    gen = chainrule.random.resolve(generator)           # the given one or the default
    mask = gen.random(x.shape, x.dtype, device=x.device) < keep   # on x's device
    w = gen.standard_normal(shape, dtype, device=param.device)

Each draw returns an array of ``device``'s library (NumPy for None / "cpu", CuPy for a
GPU), in the requested dtype.
"""

from __future__ import annotations

import json
from typing import Any

import numpy

from chainrule import backend
from chainrule.device import CPU, as_device

# A device stream's seed is derived from (base seed, GPU index, draw count at which the
# stream restarted, this tag), so it never coincides with the host stream's seed.
_DEVICE_TAG = 0x6375_6461  # "cuda"


def derive_seed(base: int, index: int, start: int) -> int:
    """The seed of GPU ``index``'s stream restarted after ``start`` draws from ``base``:
    a 63-bit integer mixed by NumPy's ``SeedSequence`` (nearby inputs give unrelated
    seeds)."""
    words = numpy.random.SeedSequence([base, index, start, _DEVICE_TAG]).generate_state(2)
    return (int(words[0]) << 32 | int(words[1])) & (2**63 - 1)


class _DeviceStream:
    """One GPU's stream: the library's stream object, its base seed and its draw count."""

    __slots__ = ("base", "draws", "stream", "index")

    def __init__(self, base: int, index: int, draws: int) -> None:
        self.base, self.index, self.draws = base, index, draws
        self.stream = backend.accelerator().random_stream(derive_seed(base, index, draws), index)

    def restart(self) -> None:
        """Start a fresh segment at the current draw count (see ``Generator.get_state``)."""
        self.stream = backend.accelerator().random_stream(
            derive_seed(self.base, self.index, self.draws), self.index
        )


class Generator:
    """A random stream that can be seeded, saved and restored: NumPy's PCG64 on the host,
    and a seeded stream on each GPU it draws on (derived from the same seed).

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
        """Restart the stream from ``seed`` (the GPU streams too); returns self."""
        if seed is None:
            entropy = numpy.random.SeedSequence().entropy  # an int when drawn from the OS
            assert isinstance(entropy, int)
            seed = entropy % (2**63)
        self._seed = _check_seed(seed)
        self._rng = numpy.random.Generator(numpy.random.PCG64(self._seed))
        self._device_seeds: dict[int | None, int] = {}  # GPU index (None: all) -> base
        self._streams: dict[int, _DeviceStream] = {}
        # GPU streams restored by set_state, made when first drawn from: (base, draws).
        self._restored: dict[int, tuple[int, int]] = {}
        return self

    def manual_seed_device(self, seed: int, index: int | None = None) -> None:
        """Restart the stream of GPU ``index`` (None: every GPU) from ``seed``, leaving the
        host stream as it is (``cr.cuda.manual_seed`` / ``manual_seed_all``)."""
        seed = _check_seed(seed)
        if index is None:
            self._device_seeds = {None: seed}
            self._streams.clear()
            self._restored.clear()
        else:
            self._device_seeds[index] = seed
            self._streams.pop(index, None)
            self._restored.pop(index, None)

    def initial_seed(self) -> int:
        """The seed this stream was last started from."""
        return self._seed

    def get_state(self) -> dict[str, Any]:
        """The stream's position, as JSON-ready plain data.

        The host stream's state is PCG64's own (restoring it is bit-exact). A GPU stream's
        state is its base seed and the number of draws made from it (``{"devices":
        {"0": {"seed": s, "draws": n}}}``); cuRAND's internal state is not read back (that
        would be a device-to-host copy and depends on the kernel). Instead, reading the
        state marks a restart point: the GPU stream continues from a stream re-derived
        from (seed, GPU, n), and ``set_state`` re-derives the same one. So a run resumed
        from a checkpoint draws on the GPU exactly what the original run drew after
        saving it, bit for bit; the price is that calling ``get_state`` changes which
        (equally random, equally reproducible) values the GPU draws next.
        """
        devices = {str(i): {"seed": base, "draws": n} for i, (base, n) in self._restored.items()}
        for index, entry in self._streams.items():
            entry.restart()
            devices[str(index)] = {"seed": entry.base, "draws": entry.draws}
        seeds = {("all" if k is None else str(k)): v for k, v in self._device_seeds.items()}
        state = self._rng.bit_generator.state
        return {
            "seed": self._seed,
            "bit_generator": json.loads(json.dumps(state)),
            "devices": devices,
            "device_seeds": seeds,
        }

    def set_state(self, state: dict[str, Any]) -> None:
        """Continue from a position returned by ``get_state`` (states saved before GPU
        streams existed, without ``"devices"``, restore the host stream and reset the GPU
        streams to their seed's start)."""
        self._seed = int(state["seed"])
        self._rng = numpy.random.Generator(numpy.random.PCG64())
        self._rng.bit_generator.state = state["bit_generator"]
        self._device_seeds = {
            (None if k == "all" else int(k)): int(v)
            for k, v in state.get("device_seeds", {}).items()
        }
        self._streams = {}
        self._restored = {
            int(k): (int(v["seed"]), int(v["draws"])) for k, v in state.get("devices", {}).items()
        }

    # The draws. ``device`` None or "cpu": a NumPy array from the host stream; a GPU: an
    # array of its library from that GPU's stream. Float draws are made directly in the
    # requested dtype so float32 and float64 streams are each reproducible (float16 is
    # drawn in float32 and rounded: neither library draws it directly).
    def standard_normal(
        self, shape: tuple[int, ...], dtype: Any = numpy.float32, device: Any = None
    ) -> Any:
        """Draws from N(0, 1) of ``shape`` and ``dtype`` on ``device``."""
        draw_dtype, dtype = _draw_dtype(dtype)
        if _on_host(device):
            out = self._rng.standard_normal(shape, dtype=draw_dtype)
        else:
            out = self._device(device).standard_normal(shape, draw_dtype)
        return out if draw_dtype == dtype else out.astype(dtype)

    def random(self, shape: tuple[int, ...], dtype: Any = numpy.float32, device: Any = None) -> Any:
        """Draws from the uniform distribution on [0, 1) of ``shape`` and ``dtype``."""
        draw_dtype, dtype = _draw_dtype(dtype)
        if _on_host(device):
            out = self._rng.random(shape, dtype=draw_dtype)
        else:
            out = self._device(device).random(shape, draw_dtype)
        return out if draw_dtype == dtype else out.astype(dtype)

    def integers(
        self, low: int, high: int, shape: tuple[int, ...] | int, device: Any = None
    ) -> Any:
        """Integers drawn uniformly from [low, high), as int64."""
        if _on_host(device):
            return self._rng.integers(low, high, shape, dtype=numpy.int64)
        return self._device(device).integers(low, high, shape)

    def permutation(self, n: int, device: Any = None) -> Any:
        """A random permutation of 0..n-1, as int64."""
        if _on_host(device):
            return self._rng.permutation(n)
        return self._device(device).permutation(n).astype(numpy.int64, copy=False)

    def _device(self, device: Any) -> Any:
        """The stream of ``device``'s GPU (made on first use), counting the draw."""
        target = backend.resolve_device(device)
        assert target.index is not None
        entry = self._streams.get(target.index)
        if entry is None:
            base = self._device_seeds.get(target.index, self._device_seeds.get(None, self._seed))
            base, draws = self._restored.pop(target.index, (base, 0))
            entry = self._streams[target.index] = _DeviceStream(base, target.index, draws)
        entry.draws += 1
        return entry.stream

    def __repr__(self) -> str:
        return f"Generator(seed={self._seed})"


def _check_seed(seed: Any) -> int:
    if isinstance(seed, bool) or not isinstance(seed, (int, numpy.integer)) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    return int(seed)


def _on_host(device: Any) -> bool:
    if device is None or device is CPU or device == "cpu":  # Tensor.device gives CPU itself
        return True
    return as_device(device).type == "cpu"


_DIRECT = {
    kind: numpy.dtype(kind)
    for kind in (numpy.float32, numpy.float64, numpy.dtype("float32"), numpy.dtype("float64"))
}


def _draw_dtype(dtype: Any) -> tuple[Any, Any]:
    """(the dtype to draw in, the dtype to return)."""
    direct = _DIRECT.get(dtype)
    if direct is not None:  # the common case, one lookup (dropout draws every step)
        return direct, direct
    dtype = numpy.dtype(dtype)
    if dtype.kind != "f":
        raise TypeError(f"random floats need a floating-point dtype, got {dtype}")
    return (dtype if dtype.itemsize >= 4 else numpy.dtype("float32")), dtype


default_generator = Generator(0)
"""The generator used when none is passed. Seeded with 0 at import for reproducibility."""


def manual_seed(seed: int) -> Generator:
    """Reseed the default generator, host and GPU streams, so everything random in a run
    repeats bit for bit."""
    return default_generator.manual_seed(seed)


def initial_seed() -> int:
    """The seed the default generator was last started from."""
    return default_generator.initial_seed()


def get_rng_state() -> dict[str, Any]:
    """The default generator's state (plain data, for checkpoints; see
    ``Generator.get_state`` for what a GPU stream's state is)."""
    return default_generator.get_state()


def set_rng_state(state: dict[str, Any]) -> None:
    """Restore the default generator to a state from ``get_rng_state``."""
    default_generator.set_state(state)


def resolve(generator: Generator | None) -> Generator:
    """The generator to draw from: the one given, or the default one."""
    return default_generator if generator is None else generator
