"""Devices: cr.device, moving tensors, creation and randomness on a GPU, the errors
without one.

The GPU here is the `fake_cuda` fixture (tests/fake_cupy.py: NumPy with CuPy's manners);
tests taking `device` run on the CPU, the fake GPU and, where there is one, a real GPU.
"""

from __future__ import annotations

import sys
import types
from pathlib import Path

import numpy as np
import pytest

import chainrule as cr
import fake_cupy  # tests/fake_cupy.py (conftest puts tests/ on the path)
from chainrule import backend


# ------------------------------------------------------------------------- cr.device
@pytest.mark.parametrize(
    ("spec", "kind", "index", "text"),
    [
        ("cpu", "cpu", None, "cpu"),
        ("cpu:0", "cpu", None, "cpu"),
        ("cuda", "cuda", None, "cuda"),
        ("cuda:1", "cuda", 1, "cuda:1"),
        (" CUDA:0 ", "cuda", 0, "cuda:0"),
    ],
)
def test_device_parses_pytorch_spellings(
    spec: str, kind: str, index: int | None, text: str
) -> None:
    d = cr.device(spec)
    assert (d.type, d.index, str(d)) == (kind, index, text)
    assert cr.device(d) == d and hash(cr.device(text)) == hash(d)


def test_device_equality_and_repr() -> None:
    assert cr.device("cuda", 0) == cr.device("cuda:0") == "cuda:0"
    assert cr.device("cuda") != cr.device("cuda:0")  # "the current GPU" is not GPU 0
    assert cr.device("cpu") != "cuda" and cr.device("cpu") != "nonsense"
    assert repr(cr.device("cuda", 1)) == "device(type='cuda', index=1)"
    assert repr(cr.device("cpu")) == "device(type='cpu')"
    assert {cr.device("cuda:0"): 1}[cr.device("cuda", 0)] == 1


@pytest.mark.parametrize(
    ("args", "error", "words"),
    [
        (("gpu",), ValueError, ["unknown device 'gpu'", "cpu and cuda"]),
        (("cuda:x",), ValueError, ["must be a number"]),
        (("cuda:-1",), ValueError, ["must be a number"]),
        (("cuda:1", 2), ValueError, ["give the index once"]),
        (("cpu", 1), ValueError, ["one CPU device"]),
        (("cuda", -1), ValueError, ["integer >= 0"]),
        ((3,), TypeError, ["a device is a string", "int 3"]),
    ],
)
def test_bad_devices_say_what_is_wrong(args: tuple, error: type, words: list[str]) -> None:
    with pytest.raises(error) as info:
        cr.device(*args)
    assert all(w in str(info.value) for w in words), str(info.value)


# --------------------------------------------------------------- moving a tensor about
def test_tensor_moves_to_the_gpu_and_back(fake_cuda: str) -> None:
    x = cr.tensor([[1.0, 2.0], [3.0, 4.0]])
    assert x.device == cr.device("cpu") and not x.is_cuda
    for y in (x.to("cuda"), x.cuda(), x.cuda(0), x.to(cr.device("cuda", 0)), x.to(0)):
        assert y.is_cuda and y.device == cr.device("cuda", 0) and str(y.device) == "cuda:0"
        assert backend.is_device_array(y.data)
        np.testing.assert_array_equal(y.cpu().numpy(), x.numpy())
    y = x.cuda()
    assert y.to("cuda") is y and y.cuda() is y and x.cpu() is x  # no copy when already there
    assert y.cpu().device == "cpu" and not y.cpu().is_cuda
    with pytest.raises(ValueError, match="not a GPU"):
        x.cuda("cpu")


def test_to_combines_device_and_dtype(fake_cuda: str) -> None:
    x = cr.tensor([1.5, -2.0])
    for y in (
        x.to("cuda", cr.float64),
        x.to(cr.float64).to("cuda"),
        x.to(device="cuda", dtype=cr.float64),
        x.to("cuda").to(cr.float64),
    ):
        assert y.device == "cuda:0" and y.dtype == cr.float64
        np.testing.assert_array_equal(y.numpy(), [1.5, -2.0])
    other = cr.zeros(1, dtype=cr.float16, device="cuda")
    z = x.to(other)  # other's device and dtype
    assert z.device == other.device and z.dtype == cr.float16
    back = z.to(x)
    assert back.device == "cpu" and back.dtype == cr.float32
    with pytest.raises(TypeError, match="unexpected arguments"):
        x.to("cuda", memory_format=None)


def test_gradients_flow_back_through_to_cuda(fake_cuda: str) -> None:
    x = cr.tensor([1.0, 2.0, 3.0], requires_grad=True)
    y = x.to("cuda", cr.float64)
    assert y.grad_fn is not None and y.is_cuda
    y.backward(cr.tensor([1.0, 10.0, 100.0], dtype=cr.float64, device="cuda"))
    assert x.grad is not None and x.grad.device == "cpu" and x.grad.dtype == cr.float32
    np.testing.assert_array_equal(x.grad.numpy(), [1.0, 10.0, 100.0])
    # There and back: d/dx Σ (x on the GPU, back on the CPU)² = 2x.
    x.grad = None
    z = x.to("cuda").cpu()
    (z * z).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [2.0, 4.0, 6.0])


def test_a_gpu_leaf_gets_its_gradient_on_the_gpu(fake_cuda: str) -> None:
    w = cr.randn(2, device="cuda", requires_grad=True)
    (w.cpu() * 3).sum().backward()
    assert w.grad is not None and w.grad.device == "cuda:0"
    np.testing.assert_array_equal(w.grad.numpy(), [3.0, 3.0])


# ------------------------------------------------------------ leaving the GPU (syncs)
def test_numpy_item_tolist_copy_to_the_host_and_array_raises(fake_cuda: str) -> None:
    y = cr.tensor([[1.0, 2.0]], device="cuda")
    fake_cupy.SYNCS[0] = 0
    host = y.numpy()
    assert type(host) is np.ndarray and host.tolist() == [[1.0, 2.0]]
    host[0, 0] = 9.0  # a copy: the tensor keeps its value
    assert y[0, 0].item() == 1.0 and isinstance(y[0, 0].item(), float)
    assert y.tolist() == [[1.0, 2.0]] and float(y[0, 1]) == 2.0
    assert fake_cupy.SYNCS[0] == 5  # each of them is one read from the GPU, on request
    with pytest.raises(TypeError, match=r"can't convert cuda:0 device type tensor.*cpu\(\)"):
        np.asarray(y)  # as PyTorch: a copy from the GPU must be asked for
    with pytest.raises(cr.GraphError, match="detach"):
        cr.ones(2, device="cuda", requires_grad=True).numpy()
    np.testing.assert_array_equal(np.asarray(cr.tensor([1, 2])), [1, 2])  # CPU: fine


def test_repr_names_the_device(fake_cuda: str) -> None:
    assert repr(cr.tensor([1.0, 2.0], device="cuda")) == "tensor([1., 2.], device='cuda:0')"
    assert (
        repr(cr.ones(2, dtype=cr.float64, device="cuda", requires_grad=True))
        == "tensor([1., 1.], dtype=float64, device='cuda:0', requires_grad=True)"
    )
    assert "device" not in repr(cr.tensor([1.0]))


# ------------------------------------------------------------------------- creation
CREATORS = {
    "zeros": lambda d: cr.zeros(2, 3, device=d),
    "ones": lambda d: cr.ones((2, 3), dtype=cr.float64, device=d),
    "empty": lambda d: cr.empty(2, device=d),
    "full": lambda d: cr.full((2,), 7, device=d),
    "eye": lambda d: cr.eye(3, device=d),
    "arange": lambda d: cr.arange(1, 7, 2, device=d),
    "linspace": lambda d: cr.linspace(0, 1, 5, device=d),
    "rand": lambda d: cr.rand(4, device=d),
    "randn": lambda d: cr.randn(4, dtype=cr.float64, device=d),
    "randint": lambda d: cr.randint(0, 5, (6,), device=d),
    "randperm": lambda d: cr.randperm(5, device=d),
    "tensor": lambda d: cr.tensor([[1, 2]], device=d),
    "as_tensor": lambda d: cr.as_tensor(np.ones(2), device=d),
}


@pytest.mark.parametrize("name", sorted(CREATORS))
def test_creation_functions_make_tensors_on_the_device(name: str, fake_cuda: str) -> None:
    fake_cupy.SYNCS[0] = 0
    t = CREATORS[name]("cuda")
    assert t.device == "cuda:0" and backend.is_device_array(t.data), name
    assert fake_cupy.SYNCS[0] == 0  # nothing read back from the GPU
    on_cpu = CREATORS[name]("cpu")
    assert on_cpu.device == "cpu" and on_cpu.dtype == t.dtype and on_cpu.shape == t.shape
    if name not in ("empty", "rand", "randn", "randint", "randperm"):
        np.testing.assert_array_equal(t.numpy(), on_cpu.numpy())


def test_like_functions_follow_their_input(fake_cuda: str) -> None:
    x = cr.randn(2, 3, dtype=cr.float64, device="cuda")
    likes = [
        cr.zeros_like(x),
        cr.ones_like(x),
        cr.empty_like(x),
        cr.full_like(x, 2.0),
        cr.rand_like(x),
        cr.randn_like(x),
    ]
    for y in likes:
        assert y.device == "cuda:0" and y.dtype == cr.float64 and y.shape == (2, 3)
    assert cr.ones_like(x).numpy().sum() == 6.0 and cr.full_like(x, 2.0).numpy().sum() == 12.0
    assert cr.zeros_like(x, device="cpu").device == "cpu"
    assert cr.zeros_like(cr.zeros(2), device="cuda").device == "cuda:0"
    assert cr.zeros_like(x.data).device == "cuda:0"  # an array: its device too


def test_tensor_copies_and_as_tensor_does_not(fake_cuda: str) -> None:
    x = cr.ones(3, device="cuda")
    copy = cr.tensor(x, device="cuda")
    assert copy.data is not x.data
    copy.data[0] = 5.0
    assert x.numpy()[0] == 1.0
    assert cr.as_tensor(x) is x and cr.as_tensor(x, device="cuda") is x
    assert cr.as_tensor(x.data, device="cuda").data is x.data  # an array already there
    moved = cr.as_tensor(x, dtype=cr.float64, device="cpu")
    assert moved.device == "cpu" and moved.dtype == cr.float64
    with pytest.raises(TypeError, match="as_tensor"):
        cr.from_numpy(x.data)
    assert cr.from_numpy(np.zeros(2)).device == "cpu"


# ------------------------------------------------------------------------ randomness
def test_randn_on_the_gpu_is_reproducible_by_seed(fake_cuda: str) -> None:
    def draws() -> list[np.ndarray]:
        return [
            cr.randn(3, 4, device="cuda").numpy(),
            cr.rand(5, device="cuda").numpy(),
            cr.randint(0, 100, (6,), device="cuda").numpy(),
        ]

    cr.manual_seed(11)
    first = draws()
    cr.manual_seed(11)
    for a, b in zip(first, draws()):
        np.testing.assert_array_equal(a, b)
    cr.manual_seed(12)
    assert not np.array_equal(draws()[0], first[0])
    # The GPU's stream is not the host's: seeding both with 11 gives other numbers.
    cr.manual_seed(11)
    assert not np.array_equal(cr.randn(3, 4).numpy(), first[0])


def test_gpu_draws_leave_the_host_stream_alone(fake_cuda: str) -> None:
    cr.manual_seed(3)
    host_only = cr.randn(4).numpy()
    cr.manual_seed(3)
    cr.randn(100, device="cuda")
    np.testing.assert_array_equal(cr.randn(4).numpy(), host_only)


def test_cuda_manual_seed_reseeds_only_the_gpu(fake_cuda: str) -> None:
    cr.manual_seed(0)
    cr.cuda.manual_seed(5)
    a_gpu, a_cpu = cr.randn(3, device="cuda").numpy(), cr.randn(3).numpy()
    cr.manual_seed(0)
    cr.cuda.manual_seed_all(5)
    b_gpu, b_cpu = cr.randn(3, device="cuda").numpy(), cr.randn(3).numpy()
    np.testing.assert_array_equal(a_gpu, b_gpu)
    np.testing.assert_array_equal(a_cpu, b_cpu)
    cr.manual_seed(0)
    assert not np.array_equal(cr.randn(3, device="cuda").numpy(), a_gpu)  # seed 0, not 5
    with pytest.raises(ValueError, match="non-negative"):
        cr.cuda.manual_seed(-1)


def test_a_resumed_gpu_stream_draws_what_the_original_drew(fake_cuda: str) -> None:
    g = cr.Generator(9)
    cr.randn(7, generator=g, device="cuda")
    g.standard_normal((2,))
    state = g.get_state()
    assert state["devices"] == {"0": {"seed": 9, "draws": 1}}
    after = [cr.randn(4, generator=g, device="cuda").numpy(), cr.randn(2, generator=g).numpy()]
    resumed = cr.Generator(123)
    resumed.set_state(state)
    again = [
        cr.randn(4, generator=resumed, device="cuda").numpy(),
        cr.randn(2, generator=resumed).numpy(),
    ]
    for a, b in zip(after, again):
        np.testing.assert_array_equal(a, b)
    assert resumed.get_state()["devices"] == {"0": {"seed": 9, "draws": 2}}


def test_generator_draws_take_a_device(fake_cuda: str) -> None:
    g = cr.Generator(1)
    for array in (
        g.standard_normal((2, 2), cr.float16, device="cuda"),
        g.random((3,), device=cr.device("cuda", 0)),
        g.integers(0, 4, (5,), device="cuda"),
        g.permutation(6, device="cuda"),
    ):
        assert backend.is_device_array(array)
    assert g.standard_normal((2,), cr.float16, device="cuda").dtype == cr.float16
    assert g.permutation(6, device="cuda").dtype == cr.int64
    assert type(g.random((2,), device="cpu")) is np.ndarray


# ------------------------------------------------------------------------- save / load
def test_save_and_load_with_device(fake_cuda: str, tmp_path: Path) -> None:
    path = tmp_path / "state.safetensors"
    state = {
        "w": cr.randn(3, 2, device="cuda"),
        "b": cr.arange(4, device="cuda"),
        "h": cr.ones(2, dtype=cr.float16),
    }
    cr.save(state, path)
    for device, where in [
        (None, {"w": "cpu", "b": "cpu", "h": "cpu"}),
        ("cpu", {"w": "cpu", "b": "cpu", "h": "cpu"}),
        ("cuda", {"w": "cuda:0", "b": "cuda:0", "h": "cuda:0"}),
        (cr.device("cuda", 0), {"w": "cuda:0", "b": "cuda:0", "h": "cuda:0"}),
        ({"w": "cuda"}, {"w": "cuda:0", "b": "cpu", "h": "cpu"}),
        (lambda name: "cuda" if name == "b" else "cpu", {"w": "cpu", "b": "cuda:0", "h": "cpu"}),
    ]:
        loaded = cr.load(path, device=device)
        assert {k: str(v.device) for k, v in loaded.items()} == where, device
        for name, tensor in state.items():
            assert loaded[name].dtype == tensor.dtype
            np.testing.assert_array_equal(loaded[name].cpu().numpy(), tensor.cpu().numpy())
    with pytest.raises(TypeError, match="load: device must be"):
        cr.load(path, device=3)  # type: ignore[arg-type]


def test_state_dict_of_a_gpu_model_round_trips(fake_cuda: str, tmp_path: Path) -> None:
    model = cr.nn.Linear(3, 2)
    on_gpu = {k: v.detach().to("cuda") for k, v in model.state_dict().items()}
    cr.save(on_gpu, tmp_path / "m.safetensors")
    loaded = cr.load(tmp_path / "m.safetensors", device="cuda")
    assert all(t.is_cuda for t in loaded.values())
    fresh = cr.nn.Linear(3, 2)
    fresh.load_state_dict({k: v.cpu() for k, v in loaded.items()})
    for key, value in model.state_dict().items():
        np.testing.assert_array_equal(fresh.state_dict()[key].numpy(), value.detach().numpy())


# ------------------------------------------------------------- without a usable GPU
def _no_gpu_calls() -> dict[str, object]:
    x = cr.ones(2)
    return {
        "zeros": lambda: cr.zeros(3, device="cuda"),
        "randn": lambda: cr.randn(3, device="cuda"),
        "tensor": lambda: cr.tensor([1.0], device="cuda:0"),
        "cuda()": lambda: x.cuda(),
        "to()": lambda: x.to("cuda"),
        "load": lambda: cr.load("never-read.safetensors", device="cuda"),
        "current_device": lambda: cr.cuda.current_device(),
        "synchronize": lambda: cr.cuda.synchronize(),
    }


@pytest.fixture
def no_accelerator() -> object:
    previous = backend.install_accelerator(None)
    yield
    backend.install_accelerator(previous)


def test_without_cupy_cuda_says_what_to_install(
    monkeypatch: pytest.MonkeyPatch, no_accelerator: object
) -> None:
    monkeypatch.setitem(sys.modules, "cupy", None)  # `import cupy` raises ImportError
    assert not cr.cuda.is_available() and cr.cuda.device_count() == 0
    for name, call in _no_gpu_calls().items():
        with pytest.raises(cr.DeviceError) as info:
            call()  # type: ignore[operator]
        message = str(info.value)
        assert "needs CuPy" in message and 'pip install "chainrule[cuda]"' in message, name
    assert backend.loaded_accelerator() is None  # nothing half-loaded


def test_cupy_without_a_gpu_says_so(
    monkeypatch: pytest.MonkeyPatch, no_accelerator: object
) -> None:
    def no_device() -> int:
        raise RuntimeError("cudaErrorNoDevice: no CUDA-capable device is detected")

    fake = types.ModuleType("cupy")
    fake.__version__ = "13.3.0"  # type: ignore[attr-defined]
    fake.cuda = types.SimpleNamespace(  # type: ignore[attr-defined]
        runtime=types.SimpleNamespace(getDeviceCount=no_device)
    )
    monkeypatch.setitem(sys.modules, "cupy", fake)
    assert not cr.cuda.is_available() and cr.cuda.device_count() == 0
    for name, call in _no_gpu_calls().items():
        with pytest.raises(cr.DeviceError) as info:
            call()  # type: ignore[operator]
        message = str(info.value)
        assert "CuPy 13.3.0 is installed but finds no usable NVIDIA GPU" in message, name
        assert "cudaErrorNoDevice" in message and "nvidia-smi" in message, name
    cr.manual_seed(0)  # seeding works without a GPU
    cr.cuda.manual_seed_all(1)


def test_model_to_cuda_without_cupy_says_what_to_install(
    monkeypatch: pytest.MonkeyPatch, no_accelerator: object
) -> None:
    monkeypatch.setitem(sys.modules, "cupy", None)
    with pytest.raises(cr.DeviceError, match=r'pip install "chainrule\[cuda\]"'):
        cr.nn.Linear(2, 2).to("cuda")


def test_index_past_the_last_gpu_is_an_error(fake_cuda: str) -> None:
    with pytest.raises(cr.DeviceError, match=r"cuda:3 does not exist.*1 GPU"):
        cr.zeros(2, device="cuda:3")
    with pytest.raises(cr.DeviceError, match="cuda:1 does not exist"):
        cr.ones(2).to("cuda:1")
    assert cr.cuda.is_available() and cr.cuda.device_count() == 1
    assert cr.cuda.current_device() == 0
    cr.cuda.synchronize()
    cr.cuda.synchronize(0)
    cr.cuda.synchronize("cuda:0")
    with pytest.raises(cr.DeviceError, match="cuda:2 does not exist"):
        cr.cuda.synchronize(2)
    with pytest.raises(ValueError, match="not a GPU"):
        cr.cuda.synchronize("cpu")


# --------------------------------------------- the stand-in held to the real CuPy
needs_real_cupy = pytest.mark.skipif(
    fake_cupy.REAL_CUPY is None,
    reason="CuPy not installed (pip install -e '.[cuda-check]'; no GPU needed)",
)


def test_fake_arrays_lack_numpy_only_methods(fake_cuda: str) -> None:
    x = cr.zeros(3, device="cuda").data
    for name in ("resize", "setflags", "ctypes"):
        with pytest.raises(AttributeError, match=f"no attribute '{name}'"):
            getattr(x, name)


@needs_real_cupy
def test_fake_namespace_is_held_to_the_real_cupy(fake_cuda: str) -> None:
    """Where CuPy is installed, a NumPy name CuPy lacks fails in the fake-CUDA suite as it
    would on a GPU, so that suite checks every name the code calls exists in CuPy."""
    xp = backend.get_array_module(cr.zeros(3, device="cuda").data)
    for path, name in [("", "insert"), ("", "vecdot"), ("linalg", "vector_norm")]:
        module = getattr(xp, path) if path else xp
        with pytest.raises(AttributeError, match=r"CuPy .* lacks it"):
            getattr(module, name)
    assert float(xp.concatenate([xp.ones(2), xp.ones(1)]).sum()) == 3.0  # what CuPy has works
    assert float(xp.linalg.norm(xp.ones(4))) == 2.0
    # ... and its functions' arguments: NumPy 2's clip(min=), sum(where=), max(initial=)
    x = xp.arange(4.0)
    for call in (
        lambda: xp.clip(x, min=0.0, max=1.0),
        lambda: xp.sum(x, where=x > 1),
        lambda: xp.max(x, initial=0.0),
    ):
        with pytest.raises(TypeError, match="NumPy takes these arguments; CuPy does not"):
            call()
    assert float(xp.clip(x, 0.0, 1.0).sum()) == 3.0
    assert float(xp.sum(x, axis=0, keepdims=True)[0]) == 6.0


@needs_real_cupy
def test_the_cupy_calls_chainrule_makes_exist_in_cupy() -> None:
    """The CupyAccelerator's calls, which only a GPU runs, name real CuPy functions with
    the keywords they pass (checked on the installed CuPy, without a device)."""
    import inspect

    import cupyx
    import cupyx.scipy.special

    cupy = fake_cupy.REAL_CUPY
    stream = cupy.random.RandomState
    assert {"size", "dtype"} <= set(inspect.signature(stream.standard_normal).parameters)
    assert {"size", "dtype"} <= set(inspect.signature(stream.random_sample).parameters)
    assert {"low", "high", "size", "dtype"} <= set(inspect.signature(stream.randint).parameters)
    assert callable(stream.permutation)
    assert callable(cupyx.scatter_add) and callable(cupyx.scipy.special.erfc)
    for name in ("getDevice", "getDeviceCount"):
        assert callable(getattr(cupy.cuda.runtime, name))
    assert callable(cupy.cuda.Device.synchronize)
    for name in ("ElementwiseKernel", "RawKernel", "asarray", "ascontiguousarray", "empty"):
        assert callable(getattr(cupy, name))


@needs_real_cupy
def test_real_cupy_without_a_gpu_says_so(no_accelerator: object) -> None:
    if cr.cuda.is_available():
        pytest.skip("a GPU is here")
    with pytest.raises(cr.DeviceError, match="is installed but finds no usable NVIDIA GPU"):
        cr.randn(2, device="cuda")
    assert backend.loaded_accelerator() is None
