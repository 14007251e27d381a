"""Many accept/revert/halve searches of one architecture and task, trained as one batched model (§10.7).

Each search runs the ordinary `utils.pruning.search` loop (in a thread of its own, so the loop is written
once), but its retraining goes through a `RetrainBatcher`: when every search still running is waiting to
retrain, the batcher trains all their networks together with `utils.batched_training.train_batched` and
hands each its own result. A search that ends leaves the batch. Every member keeps its own generator, masks,
optimizer state, best epoch and accept/revert/halve state, and the batched arithmetic is the same as alone
per member, so each run folder gets exactly what the sequential path writes (tests/test_batched.py).

The threads only coordinate; torch runs one op at a time for each of them, and only one batch trains at a
time.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from utils.batched_training import train_batched


class RetrainBatcher:
    """Collects retrain requests from `n_members` searches and trains each full set as one batch."""

    def __init__(self, data, training, n_members: int, on_batch: Callable | None = None):
        self.data, self.training = data, training
        self.active = n_members
        self.pending: dict[int, tuple] = {}
        self.results: dict[int, dict] = {}
        self.error: BaseException | None = None
        self.cond = threading.Condition()
        self.on_batch = on_batch
        self.batches = 0

    def retrainer(self, member: int, generator) -> Callable:
        """retrain(model) -> metrics for member `member` (as run.pruning_runs.retrainer gives)."""

        def retrain(model):
            return self.retrain(member, model, generator)

        return retrain

    def retrain(self, member: int, model, generator) -> dict:
        with self.cond:
            self.pending[member] = (model, generator)
            self._run_if_complete()
            while member not in self.results and self.error is None:
                self.cond.wait()
            if member in self.results:
                return self.results.pop(member)
            raise RuntimeError("another search of the batch failed") from self.error

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
                include_start=True,
            )
        except BaseException as error:  # noqa: BLE001 - handed to every waiting search, re-raised by run_all
            self.error = error
            self.cond.notify_all()
            return
        self.batches += 1
        for (member, _), result in zip(batch, results):
            self.results[member] = result.metrics
        if self.on_batch is not None:
            self.on_batch(len(batch))
        self.cond.notify_all()


def run_all(jobs: list[Callable], data, training, batch_members: int | None = None, on_done=None) -> list:
    """Run `jobs` (each job(retrain_factory) -> result, where retrain_factory(generator) -> retrain(model))
    in batches of at most `batch_members` (None: all at once); returns their results in order. The first
    error of any job is re-raised once the other searches of its batch have stopped."""
    size = len(jobs) if not batch_members or batch_members <= 0 else batch_members
    results: list = [None] * len(jobs)
    for begin in range(0, len(jobs), max(size, 1)):
        _run_batch(jobs, list(range(begin, min(begin + size, len(jobs)))), data, training, results, on_done)
    return results


def _run_batch(jobs, chunk: list[int], data, training, results: list, on_done) -> None:
    batcher = RetrainBatcher(data, training, len(chunk))
    errors: dict[int, BaseException] = {}

    def work(index: int, member: int) -> None:
        try:
            results[index] = jobs[index](lambda generator: batcher.retrainer(member, generator))
            if on_done is not None:
                on_done(index)
        except BaseException as error:  # noqa: BLE001 - re-raised below in the caller's thread
            errors[index] = error
            with batcher.cond:
                if batcher.error is None:
                    batcher.error = error
                batcher.cond.notify_all()
        finally:
            batcher.leave()

    threads = [threading.Thread(target=work, args=(index, k), daemon=True) for k, index in enumerate(chunk)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        # searches stopped by another's failure raise RuntimeError from it: report the real cause
        real = [e for _, e in sorted(errors.items()) if not (isinstance(e, RuntimeError) and e.__cause__)]
        raise real[0] if real else errors[min(errors)]
