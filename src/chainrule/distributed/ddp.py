"""``DistributedDataParallel``: the same model on every rank, gradients averaged in buckets.

Each rank runs forward and backward on its own share of the global batch. With the loss a
mean over the local batch of size b and R ranks at b = B/R each, the average of the ranks'
gradients is the gradient of the mean loss over the global batch B:

    ∇L = (1/R) Σᵣ ∇Lᵣ,   Lᵣ = (1/b) Σ_{i ∈ batch r} ℓᵢ

so R ranks at batch B/R take the same optimiser steps as one rank at batch B.

How the averaging overlaps backward (PyTorch's design):

1. at wrap time, the parameters are broadcast from rank 0 (so every rank starts from the
   same weights) and grouped into **buckets** of at most ``bucket_cap_mb`` megabytes,
   in the reverse of their registration order, roughly the order in which backward
   finishes their gradients; the first bucket is capped at 1 MB so that communication
   starts early;
2. during backward, a post-accumulate hook on each parameter copies its final gradient
   into its bucket's flat buffer; when a bucket is complete its ``MPI_Iallreduce`` is
   started at once, while backward continues on the layers below. Buckets are started in
   index order, the same on every rank, as MPI requires;
3. a progress thread (see ``progress.py``) drives the reductions forward meanwhile;
4. when the last bucket has been started, the hook waits for all of them, scales by 1/R
   and points each ``.grad`` at its slice of the bucket: when ``loss.backward()``
   returns, the gradients are averaged and the optimiser can step.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from chainrule import nn
from chainrule.autograd import is_grad_enabled
from chainrule.backend import xp
from chainrule.distributed import world
from chainrule.distributed.collectives import all_gather_json, broadcast
from chainrule.distributed.progress import Progress
from chainrule.distributed.world import DistributedError
from chainrule.tensor import Tensor

FIRST_BUCKET_MB = 1.0  # PyTorch's _DEFAULT_FIRST_BUCKET_BYTES


@dataclass
class _Bucket:
    index: int
    dtype: Any
    names: list[str] = field(default_factory=list)
    params: list[Any] = field(default_factory=list)
    offsets: list[int] = field(default_factory=list)
    numel: int = 0
    buffer: Any = None  # grads, then (with find_unused_parameters) one "used" flag each
    ready: list[bool] = field(default_factory=list)
    pending: int = 0
    request: Any = None
    complete: bool = False


class DistributedDataParallel(nn.Module):
    """Wrap ``module`` so that ``backward`` averages its gradients over all ranks.

    Args:
        module: the model; it must have the same parameters (names, shapes, dtypes) on
            every rank, which is checked here.
        bucket_cap_mb: the largest bucket, in megabytes (PyTorch's default, 25).
        find_unused_parameters: walk the output's graph after each forward and count the
            parameters it does not reach as ready with a zero gradient. Needed when part
            of the model is skipped in some steps; otherwise such a step raises an error
            naming the parameters.
        broadcast_buffers: copy rank 0's buffers (running statistics) to every rank at
            each forward.
        record_timeline: keep ``timeline``, the events of the last step as
            ``(seconds, event, bucket)``: ``"forward"``, ``"launch"`` (an all-reduce
            issued), ``"complete"`` (seen finished by the progress thread),
            ``"backward_done"`` (the last gradient arrived) and ``"synced"``.

    Example:
        >>> import chainrule as cr
        >>> from chainrule import distributed as dist, nn
        >>> model = dist.DistributedDataParallel(nn.Linear(4, 2))   # a world of one here
        >>> model(cr.randn(3, 4)).sum().backward()
    """

    def __init__(
        self,
        module: nn.Module,
        bucket_cap_mb: float = 25.0,
        find_unused_parameters: bool = False,
        broadcast_buffers: bool = True,
        record_timeline: bool = False,
    ) -> None:
        super().__init__()
        if not isinstance(module, nn.Module):
            raise TypeError(
                f"DistributedDataParallel wraps an nn.Module, got {type(module).__name__}"
            )
        if bucket_cap_mb <= 0:
            raise ValueError(
                f"DistributedDataParallel: bucket_cap_mb must be > 0, got {bucket_cap_mb}"
            )
        world.init()
        self.module = module
        self.find_unused_parameters = bool(find_unused_parameters)
        self.broadcast_buffers = bool(broadcast_buffers)
        self.record_timeline = bool(record_timeline)
        self.timeline: list[tuple[float, str, int]] = []
        self._size = world.world_size()
        self._sync = True
        self._armed = False
        self._next_launch = 0
        self._handles: list[Any] = []
        named = [(n, p) for n, p in module.named_parameters() if p.requires_grad]
        _check_same_model(module)
        for _, p in named:
            broadcast(p, src=0)
        for _, b in module.named_buffers():
            broadcast(b, src=0)
        self._buckets = _make_buckets(named, bucket_cap_mb, self.find_unused_parameters)
        self._where: dict[int, tuple[_Bucket, int]] = {}
        for bucket in self._buckets:
            for slot, p in enumerate(bucket.params):
                self._where[id(p)] = (bucket, slot)
        self._progress: Progress | None = None
        if self._size > 1:
            self._progress = Progress(use_thread=world.thread_multiple())
            for _, p in named:
                self._handles.append(p.register_post_accumulate_grad_hook(self._grad_ready))

    # ----------------------------------------------------------------------- forward
    def forward(self, *args: Any, **kwargs: Any) -> Any:
        self._check_previous_step()
        if self._size > 1 and self.broadcast_buffers:
            for _, b in self.module.named_buffers():
                broadcast(b, src=0)
        if self.record_timeline:
            self.timeline = [(time.perf_counter(), "forward", -1)]
        output = self.module(*args, **kwargs)
        if self._size > 1 and self._sync and is_grad_enabled():
            self._arm()
            if self.find_unused_parameters:
                self._mark_unreached(output)
        return output

    @contextlib.contextmanager
    def no_sync(self) -> Iterator[None]:
        """Accumulate gradients locally: backward inside this block communicates nothing.

        The first backward after the block averages the accumulated gradients.
        """
        previous, self._sync = self._sync, False
        try:
            yield
        finally:
            self._sync = previous

    def finish_gradient_synchronization(self) -> None:
        """Make sure the gradients of the last backward are averaged (waits if needed).

        ``backward`` already waits when its last gradient arrives; this raises if that
        never happened, naming the parameters that got no gradient.
        """
        if self._armed:
            self._raise_missing()

    # ------------------------------------------------------------------- the buckets
    def _arm(self) -> None:
        for bucket in self._buckets:
            bucket.ready = [False] * len(bucket.params)
            bucket.pending = len(bucket.params)
            bucket.complete = False
            bucket.request = None
        self._next_launch = 0
        self._armed = True

    def _grad_ready(self, param: Any) -> None:
        if not self._armed:
            return  # a backward outside our forward, or inside no_sync()
        bucket, slot = self._where[id(param)]
        if bucket.ready[slot]:
            raise DistributedError(
                f"DistributedDataParallel: parameter {bucket.names[slot]!r} received its "
                f"gradient twice after one forward; run forward again before each backward"
            )
        self._fill(bucket, slot, param.grad, used=True)
        if self._progress is not None and not self._progress.threaded:
            self._progress.poll()  # without a progress thread, progress happens here
        if bucket.pending == 0:
            self._launch_ready()

    def _fill(self, bucket: _Bucket, slot: int, grad: Tensor | None, used: bool) -> None:
        start = bucket.offsets[slot]
        stop = bucket.offsets[slot + 1]
        if grad is None:
            bucket.buffer[start:stop] = 0
        else:
            bucket.buffer[start:stop] = grad.data.reshape(-1)
        if self.find_unused_parameters:
            bucket.buffer[bucket.numel + slot] = 1.0 if used else 0.0
        bucket.ready[slot] = True
        bucket.pending -= 1

    def _launch_ready(self) -> None:
        buckets = self._buckets
        # In index order on every rank: MPI matches collectives by the order they are issued.
        while self._next_launch < len(buckets) and buckets[self._next_launch].pending == 0:
            self._launch(buckets[self._next_launch])
            self._next_launch += 1
        if self._next_launch == len(buckets):
            self._log("backward_done", -1)
            self._wait_and_unpack()

    def _launch(self, bucket: _Bucket) -> None:
        mpi = world.mpi()
        self._log("launch", bucket.index)
        bucket.request = world.comm().Iallreduce(mpi.IN_PLACE, bucket.buffer, mpi.SUM)
        assert self._progress is not None

        def on_done() -> None:
            bucket.complete = True
            self._log("complete", bucket.index)

        self._progress.add(bucket.request, on_done)

    def _wait_and_unpack(self) -> None:
        assert self._progress is not None
        deadline = time.monotonic() + world.timeout()
        pause = 1e-5
        while not all(b.complete for b in self._buckets):
            if not self._progress.threaded:
                self._progress.poll()
            if time.monotonic() > deadline:
                waiting = [b.index for b in self._buckets if not b.complete]
                raise DistributedError(
                    f"rank {world.rank()} of {self._size}: the gradient all-reduce of buckets "
                    f"{waiting} did not complete within {world.timeout():g} s; another rank "
                    f"has probably failed or skipped a backward"
                )
            time.sleep(pause)
            pause = min(2 * pause, 1e-3)
        for bucket in self._buckets:
            self._unpack(bucket)
        self._armed = False
        self._log("synced", -1)

    def _unpack(self, bucket: _Bucket) -> None:
        grads = bucket.buffer[: bucket.numel]
        grads *= 1.0 / self._size
        for slot, p in enumerate(bucket.params):
            if self.find_unused_parameters and bucket.buffer[bucket.numel + slot] == 0:
                continue  # unused on every rank: leave .grad as it was, as PyTorch does
            view = grads[bucket.offsets[slot] : bucket.offsets[slot + 1]].reshape(p.shape)
            # .grad is a view of the bucket (PyTorch's gradient_as_bucket_view): no copy.
            p.grad = Tensor(view)

    def _mark_unreached(self, output: Any) -> None:
        reached = _reachable_leaves(output)
        for bucket in self._buckets:
            for slot, p in enumerate(bucket.params):
                if id(p) not in reached:
                    self._fill(bucket, slot, p.grad, used=False)

    def _check_previous_step(self) -> None:
        if not self._armed:
            return
        if any(b.pending < len(b.params) for b in self._buckets):
            self._raise_missing()
        self._armed = False  # a forward without backward (evaluation): nothing was sent

    def _raise_missing(self) -> None:
        missing = [
            name for b in self._buckets for name, ready in zip(b.names, b.ready) if not ready
        ]
        raise DistributedError(
            f"DistributedDataParallel (rank {world.rank()}): the last backward ended before "
            f"these parameters received a gradient: {', '.join(missing)}. Gradients can only "
            f"be averaged once every rank has them all: pass find_unused_parameters=True if "
            f"parts of the model are unused in some steps, or make every parameter take part "
            f"in the loss."
        )

    def _log(self, event: str, bucket: int) -> None:
        if self.record_timeline:
            self.timeline.append((time.perf_counter(), event, bucket))

    @property
    def buckets(self) -> list[list[str]]:
        """The parameter names in each bucket, in launch order."""
        return [list(b.names) for b in self._buckets]

    def extra_repr(self) -> str:
        return f"world_size={self._size}, buckets={len(self._buckets)}"


def _make_buckets(named: list[tuple[str, Any]], cap_mb: float, with_flags: bool) -> list[_Bucket]:
    """Group parameters, last registered first, into buckets of one dtype each."""
    buckets: list[_Bucket] = []
    open_by_dtype: dict[Any, _Bucket] = {}
    for name, p in reversed(named):
        dtype = p.data.dtype
        bucket = open_by_dtype.get(dtype)
        if bucket is None:
            bucket = open_by_dtype[dtype] = _Bucket(index=len(buckets), dtype=dtype)
            buckets.append(bucket)
        bucket.names.append(name)
        bucket.params.append(p)
        bucket.offsets.append(bucket.numel)
        bucket.numel += p.data.size
        cap = FIRST_BUCKET_MB if bucket.index == 0 else cap_mb
        if bucket.numel * dtype.itemsize >= min(cap, cap_mb) * 2**20:
            del open_by_dtype[dtype]  # full: the next parameter of this dtype opens another
    for bucket in buckets:
        bucket.offsets.append(bucket.numel)
        extra = len(bucket.params) if with_flags else 0
        bucket.buffer = xp.zeros(bucket.numel + extra, dtype=bucket.dtype)
    return buckets


def _check_same_model(module: nn.Module) -> None:
    """Raise on every rank if any rank's parameters or buffers differ from rank 0's."""
    mine = [
        [name, list(t.shape), str(t.dtype)]
        for name, t in [*module.named_parameters(), *module.named_buffers()]
    ]
    everyone = all_gather_json(mine)
    reference = everyone[0]
    for r, theirs in enumerate(everyone[1:], start=1):
        if theirs == reference:
            continue
        ref_by_name = {n: (s, d) for n, s, d in reference}
        their_by_name = {n: (s, d) for n, s, d in theirs}
        for name in sorted(set(ref_by_name) | set(their_by_name)):
            a, b = ref_by_name.get(name), their_by_name.get(name)
            if a != b:
                what_0 = "missing" if a is None else f"shape {tuple(a[0])}, dtype {a[1]}"
                what_r = "missing" if b is None else f"shape {tuple(b[0])}, dtype {b[1]}"
                raise DistributedError(
                    f"DistributedDataParallel: the model on rank {r} differs from rank 0's: "
                    f"{name!r} is {what_r} on rank {r} but {what_0} on rank 0. Every rank "
                    f"must build the same model (same architecture, dtype and options)."
                )
        raise DistributedError(
            f"DistributedDataParallel: rank {r} registers its parameters in a different "
            f"order than rank 0; build the model the same way on every rank"
        )


def _reachable_leaves(output: Any) -> set[int]:
    """The ids of the leaf tensors that ``output``'s graph reaches."""
    stack: list[Any] = []

    def collect(value: Any) -> None:
        if isinstance(value, Tensor):
            stack.append(value)
        elif isinstance(value, (list, tuple)):
            for v in value:
                collect(v)
        elif isinstance(value, dict):
            for v in value.values():
                collect(v)

    collect(output)
    leaves: set[int] = set()
    seen: set[int] = set()
    while stack:
        t = stack.pop()
        node = t.grad_fn
        if node is None:
            leaves.add(id(t))
            continue
        if id(node) in seen:
            continue
        seen.add(id(node))
        stack.extend(a for a in node.inputs if isinstance(a, Tensor))
    return leaves
