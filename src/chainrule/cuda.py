"""NVIDIA GPUs through CuPy: ``cr.cuda.is_available()``, ``device_count()``,
``current_device()``, ``synchronize()``, ``manual_seed()``, ``manual_seed_all()`` (as in
``torch.cuda``), and the adapter that ``chainrule.backend`` loads for ``"cuda"``.

Example (on a machine with a GPU and ``pip install "chainrule[cuda]"``)::

    import chainrule as cr
    if cr.cuda.is_available():
        x = cr.randn(128, 784, device="cuda")    # drawn on the GPU, seeded by cr.manual_seed
        y = (x @ x.T).sum()
        print(y.item())                          # the one sync: a number back on the host

CuPy mirrors NumPy's API, so the ops run on it unchanged; what differs is gathered in
``CupyAccelerator`` (moving arrays between host and GPU, scatter-add, ``erfc``, random
streams). CuPy is imported the first time a GPU is asked for: ``import chainrule`` stays
fast and works without it.
"""

from __future__ import annotations

from typing import Any

import numpy

from chainrule import backend, random
from chainrule.device import Device
from chainrule.errors import DeviceError

INSTALL_HINT = (
    'install CuPy for your CUDA version: pip install "chainrule[cuda]" (CuPy for CUDA 12, '
    "cupy-cuda12x), or pip install cupy-cuda11x for CUDA 11; "
    "https://docs.cupy.dev/en/stable/install.html lists the wheels"
)


class CupyStream:
    """A seeded random stream on one GPU (CuPy's cuRAND-backed ``RandomState``), with the
    draws chainrule's ``Generator`` makes."""

    def __init__(self, cupy: Any, seed: int, index: int) -> None:
        self._cupy = cupy
        self._index = index
        with cupy.cuda.Device(index):
            self._rs = cupy.random.RandomState(seed)

    def standard_normal(self, shape: tuple[int, ...], dtype: Any) -> Any:
        with self._cupy.cuda.Device(self._index):
            return self._rs.standard_normal(shape, dtype=dtype)

    def random(self, shape: tuple[int, ...], dtype: Any) -> Any:
        with self._cupy.cuda.Device(self._index):
            return self._rs.random_sample(shape, dtype=dtype)

    def integers(self, low: int, high: int, shape: tuple[int, ...] | int) -> Any:
        with self._cupy.cuda.Device(self._index):
            return self._rs.randint(low, high, shape, dtype=numpy.int64)

    def permutation(self, n: int) -> Any:
        with self._cupy.cuda.Device(self._index):
            return self._rs.permutation(n)


class CupyAccelerator:
    """``chainrule.backend.Accelerator`` for CuPy."""

    def __init__(self, cupy: Any) -> None:
        import cupyx  # ships with CuPy

        self._cupy = cupy
        self._cupyx = cupyx
        self.xp = cupy
        self.ndarray = cupy.ndarray
        self.name = f"CuPy {cupy.__version__}"

    def from_host(self, array: Any, index: int) -> Any:
        with self._cupy.cuda.Device(index):
            return self._cupy.asarray(array)

    def to_host(self, array: Any) -> numpy.ndarray:
        return numpy.asarray(array.get())

    def copy_to(self, array: Any, index: int) -> Any:
        with self._cupy.cuda.Device(index):
            return self._cupy.array(array, copy=True)

    def device_index(self, array: Any) -> int:
        return int(array.device.id)

    def current_index(self) -> int:
        return int(self._cupy.cuda.runtime.getDevice())

    def device_count(self) -> int:
        return int(self._cupy.cuda.runtime.getDeviceCount())

    def synchronize(self, index: int | None) -> None:
        device = self._cupy.cuda.Device(self.current_index() if index is None else index)
        device.synchronize()

    def scatter_add(self, target: Any, index: Any, values: Any) -> None:
        self._cupyx.scatter_add(target, index, values)

    def erfc(self, x: Any) -> Any:
        import cupyx.scipy.special  # CuPy's SciPy-compatible kernels

        return cupyx.scipy.special.erfc(x)

    def random_stream(self, seed: int, index: int) -> CupyStream:
        return CupyStream(self._cupy, seed, index)

    def using(self, index: int) -> Any:
        return self._cupy.cuda.Device(index)  # a context: arrays made inside go to GPU index


def load_cupy() -> CupyAccelerator:
    """Import CuPy and check that it sees a GPU.

    Raises:
        DeviceError: CuPy missing, or no usable GPU; says what to install or check.
    """
    try:
        import cupy
    except ImportError as exc:
        raise DeviceError(
            f"device 'cuda' needs CuPy, which cannot be imported here ({exc}); {INSTALL_HINT}"
        ) from None
    try:
        count = int(cupy.cuda.runtime.getDeviceCount())
    except Exception as exc:  # CUDARuntimeError: no driver, no GPU
        raise DeviceError(
            f"device 'cuda': CuPy {cupy.__version__} is installed but finds no usable "
            f"NVIDIA GPU ({exc}); check that the driver works (nvidia-smi) and that the "
            f"CuPy wheel matches its CUDA version ({INSTALL_HINT})"
        ) from None
    if count == 0:
        raise DeviceError(f"device 'cuda': CuPy {cupy.__version__} finds no GPU on this machine")
    return CupyAccelerator(cupy)


def is_available() -> bool:
    """True when CuPy is installed and sees at least one GPU (never raises)."""
    if backend.loaded_accelerator() is not None:
        return True
    try:
        import cupy

        return int(cupy.cuda.runtime.getDeviceCount()) > 0
    except Exception:
        return False


def device_count() -> int:
    """The number of GPUs CuPy sees (0 without CuPy or without a GPU)."""
    return backend.accelerator().device_count() if is_available() else 0


def current_device() -> int:
    """The index of the GPU that ``"cuda"`` without an index means.

    Raises:
        DeviceError: no CuPy or no GPU (the message says what to install).
    """
    return backend.accelerator().current_index()


def manual_seed(seed: int) -> None:
    """Seed the random stream of the current GPU (as ``torch.cuda.manual_seed``).

    ``cr.manual_seed(seed)`` seeds the CPU and every GPU at once; this seeds only the
    current GPU's stream of the default generator, which draws from it when asked for
    ``device="cuda"``. Works without a GPU too (the seed waits for one).
    """
    index = backend.accelerator().current_index() if is_available() else 0
    random.default_generator.manual_seed_device(seed, index)


def manual_seed_all(seed: int) -> None:
    """Seed the random streams of every GPU (as ``torch.cuda.manual_seed_all``); the CPU's
    stream is left as it is."""
    random.default_generator.manual_seed_device(seed, None)


def synchronize(device: Any = None) -> None:
    """Wait for the GPU's queued work to finish (as ``torch.cuda.synchronize``).

    Args:
        device: a GPU (an index, "cuda:1", a ``cr.device``); default the current one.

    Raises:
        DeviceError: no CuPy or no GPU (the message says what to install).
    """
    if isinstance(device, int) and not isinstance(device, bool):
        device = Device("cuda", device)
    target = backend.resolve_device("cuda" if device is None else device)
    if target.type != "cuda":
        raise ValueError(f"cr.cuda.synchronize({device!r}): not a GPU")
    backend.synchronize(target)
