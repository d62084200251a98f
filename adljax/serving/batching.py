"""Dynamic micro-batching: requests that arrive together share one compiled call.

A request waits only while the previous batch computes (or, with ``max_wait_ms > 0``, up to
that long for company), so at low load each request runs at once and under load the batch
fills up to ``max_batch_size``. Batches are padded to a power of two (at most
``max_batch_size``), so a function compiles for a handful of sizes, all at start-up.
"""

import asyncio
import collections
import concurrent.futures
import dataclasses
from collections.abc import Sequence

import numpy as np

from adljax.serving.artifact import Function


def bucket_sizes(max_batch_size: int) -> list[int]:
    """The padded batch sizes: powers of two below ``max_batch_size``, then it."""
    sizes, size = [], 1
    while size < max_batch_size:
        sizes.append(size)
        size *= 2
    return [*sizes, max_batch_size]


def _bucket(rows: int, max_batch_size: int) -> int:
    return next(size for size in bucket_sizes(max_batch_size) if size >= rows)


def _pad(array: np.ndarray, axis: int, size: int) -> np.ndarray:
    """``array`` grown to ``size`` along ``axis`` by repeating its last entry."""
    missing = size - array.shape[axis]
    if missing == 0:
        return array
    last = np.take(array, [-1], axis=axis)
    return np.concatenate([array, np.repeat(last, missing, axis=axis)], axis=axis)


@dataclasses.dataclass
class _Request:
    inputs: list[np.ndarray]
    rows: int
    future: asyncio.Future


class MicroBatcher:
    """Batches calls of one exported `Function` on a worker thread.

    Use ``await batcher.submit(inputs)`` from the event loop; `start` and `stop` it with the
    service. Inputs must have passed ``function.check_inputs``.
    """

    def __init__(
        self,
        function: Function,
        executor: concurrent.futures.Executor,
        *,
        max_batch_size: int,
        max_wait_ms: float,
    ) -> None:
        self.function = function
        self.max_batch_size = max_batch_size
        self.max_wait = max_wait_ms / 1000.0
        self.batches = 0
        self._executor = executor
        self._queue: collections.deque[_Request] = collections.deque()
        self._arrived = asyncio.Event()
        self._task: asyncio.Task | None = None

    def warm_up(self) -> None:
        """Compiles every padded batch size (blocking; call before serving)."""
        for size in bucket_sizes(self.max_batch_size):
            state = self.function.initial_state(size)
            inputs = [
                state[spec.name]
                if spec.name in state
                else np.zeros(
                    [size if s == "batch" else s for s in spec.shape], np.dtype(spec.dtype)
                )
                for spec in self.function.inputs
            ]
            self.function.run_checked(inputs)

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._serve())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        for request in self._queue:
            request.future.cancel()

    async def submit(self, inputs: Sequence[np.ndarray]) -> dict[str, np.ndarray]:
        """The function's outputs for these inputs (batch axis as in the manifest)."""
        rows = inputs[0].shape[self.function.inputs[0].batch_axis]
        if rows > self.max_batch_size:
            raise ValueError(f"{rows} items exceed the batch limit {self.max_batch_size}")
        future = asyncio.get_running_loop().create_future()
        self._queue.append(_Request(list(inputs), rows, future))
        self._arrived.set()
        return await future

    async def _next_batch(self) -> list[_Request]:
        while not self._queue:
            self._arrived.clear()
            await self._arrived.wait()
        batch = [self._queue.popleft()]
        rows = batch[0].rows
        deadline = asyncio.get_running_loop().time() + self.max_wait
        while rows < self.max_batch_size:
            if not self._queue:
                remaining = deadline - asyncio.get_running_loop().time()
                if remaining <= 0:
                    break
                self._arrived.clear()
                try:
                    await asyncio.wait_for(self._arrived.wait(), remaining)
                except TimeoutError:
                    break
                continue
            if rows + self._queue[0].rows > self.max_batch_size:
                break
            request = self._queue.popleft()
            batch.append(request)
            rows += request.rows
        return batch

    async def _serve(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            batch = [r for r in await self._next_batch() if not r.future.cancelled()]
            if not batch:
                continue
            try:
                results = await loop.run_in_executor(self._executor, self._run, batch)
            except Exception as error:  # a failed call fails its requests, not the service
                for request in batch:
                    if not request.future.done():
                        request.future.set_exception(error)
                continue
            for request, result in zip(batch, results, strict=True):
                if not request.future.done():
                    request.future.set_result(result)

    def _run(self, batch: list[_Request]) -> list[dict[str, np.ndarray]]:
        """One compiled call for the whole batch, split back into per-request outputs."""
        rows = sum(r.rows for r in batch)
        size = _bucket(rows, self.max_batch_size)
        inputs = []
        for i, spec in enumerate(self.function.inputs):
            joined = np.concatenate([r.inputs[i] for r in batch], axis=spec.batch_axis)
            inputs.append(_pad(joined, spec.batch_axis, size))
        outputs = self.function.run_checked(inputs)
        self.batches += 1
        results, start = [], 0
        for request in batch:
            stop = start + request.rows
            results.append(
                {
                    spec.name: np.take(outputs[spec.name], range(start, stop), axis=spec.batch_axis)
                    for spec in self.function.outputs
                }
            )
            start = stop
        return results
