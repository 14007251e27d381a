"""Many accept/revert/halve searches of one architecture and task, trained as one batched model (§10.7).

Each search runs the ordinary `utils.pruning.search` loop (in a thread of its own, so the loop is written
once), but its retraining goes through a `RetrainBatcher`: when every search still running is waiting to
retrain, the batcher trains all their networks together with `utils.batched_training.train_batched` and
hands each its own result. A search that ends leaves the batch. Every member keeps its own generator, masks,
optimizer state, best epoch and accept/revert/halve state, and the batched arithmetic is the same as alone
per member, so each run folder gets exactly what the sequential path writes (tests/test_batched.py).

The threads only coordinate, and they take turns: a search runs its Python (masks, scores, files) only
while it holds the pool's baton, and hands the baton on while it waits for its batch. Without the baton,
dozens of threads would fight over the GIL that every small torch op releases and takes back (on 2 cores the
full 4 2 4 grid spent more time in futex calls than in arithmetic). Only one batch trains at a time.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable

from utils.batched_training import train_batched


class RetrainBatcher:
    """Collects retrain requests from `n_members` searches and trains each full set as one batch."""

    def __init__(self, data, training, n_members: int, include_start: bool = True):
        self.data, self.training = data, training
        self.include_start = include_start  # --retrain_include_start
        self.active = n_members
        self.pending: dict[int, tuple] = {}
        self.results: dict[int, dict] = {}
        self.error: BaseException | None = None
        self.cond = threading.Condition()
        self.baton = threading.Lock()  # held by the one search whose Python runs (see the module docstring)

    def retrainer(self, member: int, generator) -> Callable:
        """retrain(model) -> metrics for member `member` (as run.pruning_runs.retrainer gives)."""

        def retrain(model):
            return self.retrain(member, model, generator)

        return retrain

    def retrain(self, member: int, model, generator) -> dict:
        """Called by a search that holds the baton; returns holding it again."""
        with self.cond:
            self.pending[member] = (model, generator)
            self._run_if_complete()
            self.baton.release()
            while member not in self.results and self.error is None:
                self.cond.wait()
            result = self.results.pop(member, None)
        self.baton.acquire()  # after letting go of cond: the baton's holder may be waiting for cond
        if result is None:
            raise RuntimeError("another search of the batch failed") from self.error
        return result

    def leave(self) -> None:
        """A search ended (or failed): the batch no longer waits for it."""
        with self.cond:
            self.active -= 1
            self._run_if_complete()

    def _run_if_complete(self) -> None:
        if not self.pending or len(self.pending) < self.active or self.error is not None:
            return
        batch = sorted(self.pending.items())
        self.pending.clear()
        try:
            results = train_batched(
                [model for _, (model, _) in batch],
                self.data,
                self.training,
                [generator for _, (_, generator) in batch],
                include_start=self.include_start,
            )
        except BaseException as error:  # noqa: BLE001 - handed to every waiting search, re-raised by run_all
            self.error = error
            self.cond.notify_all()
            return
        for (member, _), result in zip(batch, results):
            self.results[member] = result.metrics
        self.cond.notify_all()


class SearchPool:
    """Searches that join one RetrainBatcher as they start and leave it as they end, each in a thread.

    `spawn(job)` starts job(retrain_factory) in a new thread; a job may spawn further jobs (an edge search
    after its unit search, say), so a grid runs as a pipeline and the batches stay full. `max_members`
    caps the searches in flight (None: no cap). `wait()` joins every thread and re-raises the first error.
    Batch composition changes only speed: each member's result is the same in any batch.
    """

    def __init__(self, data, training, max_members: int | None = None, include_start: bool = True):
        self.batcher = RetrainBatcher(data, training, 0, include_start=include_start)
        self.slots = threading.Semaphore(max_members) if max_members else None
        self.threads: list[threading.Thread] = []
        self.errors: list[BaseException] = []
        self.lock = threading.Lock()
        self.ids = itertools.count()

    def spawn(self, job: Callable, on_done: Callable | None = None) -> None:
        # Without a cap the new search joins before its thread starts, so no batch runs without it; with a
        # cap it joins once it holds a slot (a search waiting for a slot must not hold up the batch).
        capped = self.slots is not None
        member = next(self.ids)
        if not capped:
            self._join()

        def work() -> None:
            if capped:
                self.slots.acquire()
                self._join()
            self.batcher.baton.acquire()
            try:
                result = job(lambda generator: self.batcher.retrainer(member, generator))
                if on_done is not None:
                    on_done(result)
            except BaseException as error:  # noqa: BLE001 - re-raised by wait() in the caller's thread
                with self.lock:
                    self.errors.append(error)
                with self.batcher.cond:
                    if self.batcher.error is None:
                        self.batcher.error = error
                    self.batcher.cond.notify_all()
            finally:
                self.batcher.leave()
                self.batcher.baton.release()
                if self.slots is not None:
                    self.slots.release()

        thread = threading.Thread(target=work, daemon=True)
        with self.lock:
            self.threads.append(thread)
        thread.start()

    def _join(self) -> None:
        with self.batcher.cond:
            self.batcher.active += 1

    def wait(self) -> None:
        while True:
            with self.lock:
                pending = [t for t in self.threads if t.is_alive()]
            if not pending:
                break
            for thread in pending:
                thread.join()
        if self.errors:
            # searches stopped by another's failure raise RuntimeError from it: report the real cause
            real = [e for e in self.errors if not (isinstance(e, RuntimeError) and e.__cause__)]
            raise real[0] if real else self.errors[0]


def run_all(
    jobs: list[Callable], data, training, batch_members: int | None = None, on_done=None, include_start=True
) -> list:
    """Run `jobs` (each job(retrain_factory) -> result, where retrain_factory(generator) -> retrain(model))
    with at most `batch_members` in flight (None: all); returns their results in order. include_start:
    whether a retrain's untrained start competes as its epoch -1 (--retrain_include_start)."""
    pool = SearchPool(data, training, batch_members, include_start)
    results: list = [None] * len(jobs)
    for index, job in enumerate(jobs):

        def store(result, index=index):
            results[index] = result
            if on_done is not None:
                on_done(index)

        pool.spawn(job, store)
    pool.wait()
    return results
