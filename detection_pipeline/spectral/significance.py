"""Is the network more clusterable than its shuffles? One seeded shuffle at a time, and the statistics.

Shuffle i of method m under seed s draws from `SeedSequence(s, spawn_key=(m's position, i))`: its weights
and its clustering's random_state depend on (s, m, i) only, so the result is the same whatever the number
of worker processes and whatever was done before (a resumed run gives the same numbers).

What is shuffled follows the anchors: the network without the units its own graph pruning removed
(`smaller_job`): 000 deletes the components that do not join the first and last layers before it shuffles,
001 the zero-degree units. A shuffle whose graph keeps K or fewer nodes (its edges no longer join the inputs
to the outputs) has no K-clustering: it is drawn again, from a seed of its own (draw d > 0 of shuffle i:
spawn key (method position, i, d)), at most MAX_DRAWS times; the result records how many draws each such
shuffle took. (000 would stop with an error there; on the published sparse networks about one shuffle in a
thousand needs a second draw.)
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from detection_pipeline.spectral.graph import WeightBlock, graph_from_blocks
from detection_pipeline.spectral.shuffles import SHUFFLE_METHODS, shuffle_weights
from utils.errors import InputError

MAX_DRAWS = 100


@dataclass
class ShuffleJob:
    """What every shuffle of one test shares: the folded blocks of the true network, its widths and the
    graph and clustering settings."""

    blocks: list[WeightBlock]
    arch: list[int]
    n_clusters: int
    seed: int = 0
    normalize_weights: bool = True
    graph_prune: str = "components"
    solver: str = "exact"  # "exact": scikit-learn's call per shuffle; "fast": fast.py (same objective)


def smaller_job(job: ShuffleJob) -> ShuffleJob:
    """The same job on the network without the units its graph pruning removes (components that do not
    join the first and last layers, or zero-degree units), as the anchors remove them before shuffling."""
    from detection_pipeline.spectral.graph import adjacency_from_blocks, kept_nodes, restrict_blocks

    kept = kept_nodes(adjacency_from_blocks(job.blocks, job.arch), job.arch, job.graph_prune)
    if kept.all():
        return job
    blocks, arch = restrict_blocks(job.blocks, job.arch, kept)
    return ShuffleJob(
        blocks, arch, job.n_clusters, job.seed, job.normalize_weights, job.graph_prune, job.solver
    )


def shuffle_seeds(seed: int, method: str, index: int, draw: int = 0) -> tuple[np.random.Generator, int]:
    """(Generator for the weights, integer random_state for the clustering) of draw `draw` of shuffle
    `index` (draw 0: the shuffle's own seed; later draws only when the earlier ones had no K-clustering)."""
    key = (SHUFFLE_METHODS.index(method), index) + ((draw,) if draw else ())
    sequence = np.random.SeedSequence(seed, spawn_key=key)
    weights_seq, cluster_seq = sequence.spawn(2)
    return np.random.default_rng(weights_seq), int(cluster_seq.generate_state(1)[0])


def _shuffled_blocks(job: ShuffleJob, method: str, rng) -> list[WeightBlock]:
    """The job's weight blocks with their weights shuffled by `method` from `rng` (both paths start here)."""
    shuffled = shuffle_weights([b.weight for b in job.blocks], method, rng)
    return [WeightBlock(b.source, b.target, w) for b, w in zip(job.blocks, shuffled)]


def shuffled_graph(job: ShuffleJob, method: str, index: int):
    """(WeightGraph of shuffle `index`, its clustering's random_state, draws it took): the first draw whose
    graph keeps more than K nodes (see the module docstring). InputError after MAX_DRAWS draws."""
    for draw in range(MAX_DRAWS):
        rng, cluster_seed = shuffle_seeds(job.seed, method, index, draw)
        blocks = _shuffled_blocks(job, method, rng)
        graph = graph_from_blocks(blocks, job.arch, job.normalize_weights, job.graph_prune)
        if graph.n_nodes > job.n_clusters:
            return graph, cluster_seed, draw + 1
    raise _too_sparse(job, method, index)


def _too_sparse(job: ShuffleJob, method: str, index: int) -> InputError:
    return InputError(
        f"{MAX_DRAWS} draws of {method} shuffle {index} all left {job.n_clusters} or fewer nodes joining "
        f"the inputs to the outputs ({sum(job.arch)} units shuffled): this network is too sparse for "
        f"{job.n_clusters} clusters under {method} shuffles; lower --n_clusters or use --shuffle_method "
        "layer_nonzero"
    )


def shuffled_ncut(job: ShuffleJob, method: str, index: int) -> float:
    """The n-cut of the spectral clustering of shuffle `index` of `method` (by job.solver)."""
    return shuffled_ncut_info(job, method, index)[0]


def shuffled_ncut_info(job: ShuffleJob, method: str, index: int) -> tuple[float, str, int]:
    """(n-cut of shuffle `index` of `method`, how it was clustered: "exact" or "fast-<route>", the route of
    fast.spectral_embedding_blocks; draws it took, see shuffled_graph)."""
    from detection_pipeline.spectral.cluster import ncut, spectral_labels

    if job.solver == "fast":
        return fast_shuffled_ncut(job, method, index)
    graph, cluster_seed, draws = shuffled_graph(job, method, index)
    labels = spectral_labels(graph.adjacency, job.n_clusters, cluster_seed)
    return ncut(graph.adjacency, labels), "exact", draws


def fast_shuffled_ncut(job: ShuffleJob, method: str, index: int) -> tuple[float, str, int]:
    """Shuffle `index` of `method` (the same weights and draws as the exact path) clustered by fast.py from
    its edge blocks: (n-cut, "fast-" + the eigensolver's route: gram, dense, lobpcg or lanczos, draws)."""
    from detection_pipeline.spectral.cluster import n_init_for
    from detection_pipeline.spectral.fast import kmeans_best, ncut_blocks, spectral_embedding_blocks

    for draw in range(MAX_DRAWS):
        rng, cluster_seed = shuffle_seeds(job.seed, method, index, draw)
        blocks, arch = _fast_blocks(job, method, rng)
        n = sum(arch)
        if n > job.n_clusters:
            cluster_rng = np.random.default_rng(cluster_seed)
            embedding, route = spectral_embedding_blocks(blocks, arch, job.n_clusters, cluster_rng)
            labels, _ = kmeans_best(embedding, job.n_clusters, n_init_for(n), cluster_rng)
            return ncut_blocks(blocks, arch, labels), f"fast-{route}", draw + 1
    raise _too_sparse(job, method, index)


def _fast_blocks(job: ShuffleJob, method: str, rng) -> tuple[list[WeightBlock], list[int]]:
    """The shuffled |w| blocks of the fast path, normalised and pruned as the exact path's graph is."""
    from detection_pipeline.spectral.graph import (
        adjacency_from_blocks,
        kept_nodes,
        normalize_blocks,
        restrict_blocks,
    )

    blocks = _shuffled_blocks(job, method, rng)
    if job.normalize_weights:
        blocks = normalize_blocks(blocks, len(job.arch), copy=False)  # the shuffled arrays are ours
    for b in blocks:
        np.abs(b.weight, out=b.weight)
    arch = list(job.arch)
    # Every consecutive block full: one connected graph through all layers, nothing to remove. Otherwise
    # the graph pruning of the exact path, on the sparse graph (as large as the kept edges).
    chain = {(b.source, b.target): b for b in blocks if b.target == b.source + 1}
    full = len(chain) == len(arch) - 1 and all(b.weight.min() > 0 for b in chain.values())
    if not full:
        kept = kept_nodes(adjacency_from_blocks(blocks, arch), arch, job.graph_prune)
        if not kept.all():
            blocks, arch = restrict_blocks(blocks, arch, kept)
    return blocks, arch


def statistics(true_ncut: float, ncuts) -> dict:
    """mean, std (ddof 0), z = (true - mean)/(std + 1e-9) (the anchor's ε keeps z finite when all shuffles
    tie), p = (#{shuffled <= true} + 1)/(n + 1), and the anchor's percentile mean(shuffled < true)."""
    values = np.asarray(ncuts, dtype=np.float64)
    mean, std = float(values.mean()), float(values.std())
    return {
        "ncuts": values.tolist(),
        "mean": mean,
        "std": std,
        "z": (true_ncut - mean) / (std + 1e-9),
        "p": float((np.sum(values <= true_ncut) + 1) / (values.size + 1)),
        "percentile": float(np.mean(values < true_ncut)),
    }


# -- parallel runs ---------------------------------------------------------------------------------------
_JOB: ShuffleJob | None = None


def _one_thread():
    """Limit BLAS and OpenMP to one thread (the processes share the cores; more threads per process only
    make them wait on each other). The libraries are imported first: a limit reaches only the thread
    pools already loaded. Returns the limiter (a context manager that restores the old limits)."""
    import scipy.sparse.linalg  # noqa: F401
    import sklearn.cluster  # noqa: F401
    from threadpoolctl import threadpool_limits

    return threadpool_limits(1)


def _init_worker(job: ShuffleJob) -> None:
    """Once per worker process: keep the job, one thread."""
    global _JOB
    _JOB = job
    _one_thread()


def _run_task(task: tuple[str, int]) -> tuple[str, int, float, str, int]:
    method, index = task
    return (method, index, *shuffled_ncut_info(_JOB, method, index))


def run_shuffles(job: ShuffleJob, tasks: list[tuple[str, int]], workers: int = 1):
    """Yield (method, index, n-cut, route, draws) for every task, in completion order. workers > 1: that
    many reused worker processes (forkserver where the platform has it), each given the job once."""
    if not tasks:
        return
    if workers <= 1:
        with _one_thread():  # same numbers, less waiting
            for method, index in tasks:
                yield (method, index, *shuffled_ncut_info(job, method, index))
        return
    import multiprocessing as mp

    methods = mp.get_all_start_methods()
    context = mp.get_context("forkserver" if "forkserver" in methods else "spawn")
    if "forkserver" in methods:
        context.set_forkserver_preload(["detection_pipeline.spectral.significance", "sklearn.cluster"])
    with context.Pool(min(workers, len(tasks)), initializer=_init_worker, initargs=(job,)) as pool:
        yield from pool.imap_unordered(_run_task, tasks, chunksize=1)
