"""--experiment clusterability: is the network more clusterable than its shuffles? (DESIGN §10.2)

The true n-cut (of the network's spectral clustering at --n_clusters, or of --partition's modules) against
the n-cuts of --num_shuffles shuffled networks per --shuffle_method, clustered the same way. Writes
clusterability.json beside the network and a histogram PNG under --visualization_path. Shuffles run in
--workers processes; every finished shuffle is kept in clusterability.partial.json (atomically), so a
killed run resumes where it stopped, and a finished one is extended when --num_shuffles grows.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from pathlib import Path

import numpy as np

from run.network_source import claim_out_dir, load_target
from utils.atomic_io import write_json_atomic
from utils.config import ConfigError
from utils.errors import InputError

RESULT_FILE = "clusterability.json"
PARTIAL_FILE = "clusterability.partial.json"
PICTURE_FILE = "clusterability.png"
SAVE_EVERY_S = 1.0


def _progress_bar(config, total: int, desc: str):
    """A tqdm bar (silent with --quiet). Not run.common's: that module imports torch, 2 s for nothing here."""
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, disable=bool(config.quiet), leave=False, dynamic_ncols=True)


def _methods(config) -> list[str]:
    from detection_pipeline.spectral.shuffles import check_method

    methods = list(dict.fromkeys(config.shuffle_method))
    for method in methods:
        check_method(method)
    return methods


def _fingerprint(job, labels: np.ndarray | None) -> str:
    """sha256 of everything a shuffle's n-cut depends on: weights, widths, settings, the scored partition."""
    digest = hashlib.sha256()
    for block in job.blocks:
        digest.update(f"{block.source}>{block.target}".encode())
        digest.update(np.ascontiguousarray(block.weight).tobytes())
    settings = [job.arch, job.n_clusters, job.seed, job.normalize_weights, job.graph_prune]
    digest.update(json.dumps(settings).encode())
    if labels is not None:
        digest.update(np.asarray(labels, np.int64).tobytes())
    return digest.hexdigest()


def _load_done(paths: dict, key: str, methods: list[str]) -> tuple[dict, dict]:
    """Shuffle n-cuts already computed for this key, {method: {index: n-cut}}, and the draws of those that
    were redrawn, {method: {index: draws}}: the partial file first, else a finished result."""
    done: dict[str, dict[int, float]] = {m: {} for m in methods}
    redrawn: dict[str, dict[int, int]] = {m: {} for m in methods}
    for kind in ("partial", "result"):
        try:
            data = json.loads(paths[kind].read_text())
        except (OSError, json.JSONDecodeError):
            continue
        if data.get("key") != key:
            continue
        for method in methods:
            if kind == "partial":
                stored = data.get("done", {}).get(method, {})
                done[method].update({int(i): float(v) for i, v in stored.items()})
                draws = data.get("redrawn", {}).get(method, {})
            else:
                ncuts = data.get("shuffles", {}).get(method, {}).get("ncuts", [])
                done[method].update({i: float(v) for i, v in enumerate(ncuts)})
                draws = data.get("shuffles", {}).get(method, {}).get("redrawn", {})
            redrawn[method].update({int(i): int(v) for i, v in draws.items()})
        return done, redrawn
    return done, redrawn


def _by_index(values: dict) -> dict:
    return {str(i): v for i, v in sorted(values.items())}


def _save_partial(path: Path, key: str, done: dict, redrawn: dict) -> None:
    write_json_atomic(
        path,
        {
            "key": key,
            "done": {m: _by_index(d) for m, d in done.items()},
            "redrawn": {m: _by_index(d) for m, d in redrawn.items()},
        },
    )


def _true_clustering(config, network, graph):
    """(labels over all units (-1: not in the graph), n-cut, K for the shuffles, what was scored)."""
    from detection_pipeline.partition import Partition
    from detection_pipeline.spectral.cluster import check_clusters, ncut, spectral_labels

    if config.partition:
        partition = Partition.from_file(config.partition)
        partition.check_fits(network)
        on_graph = partition.labels[graph.kept]
        if not (on_graph >= 0).any():
            raise InputError(f"{config.partition} drops every unit of the weight graph; nothing to score")
        explicit = "n_clusters" in getattr(config, "explicit_options", [])
        k = int(config.n_clusters[0]) if explicit else partition.n_modules
        check_clusters(k, graph.n_nodes)
        return graph.expand(on_graph), ncut(graph.adjacency, on_graph), k, str(config.partition)
    k = int(config.n_clusters[0])
    check_clusters(k, graph.n_nodes)
    labels = spectral_labels(graph.adjacency, k, int(config.seed))
    return graph.expand(labels), ncut(graph.adjacency, labels), k, f"spectral K={k} seed {config.seed}"


def shuffle_test(config, network, methods: list[str], paths: dict) -> dict:
    """The whole test on one network; resumes from / keeps paths["partial"], reuses a finished
    paths["result"] with the same key. Returns the result dict (not yet written)."""
    from detection_pipeline.spectral.graph import folded_blocks, graph_from_blocks
    from detection_pipeline.spectral.significance import ShuffleJob, run_shuffles, smaller_job, statistics
    from utils.fingerprint import network_record

    blocks = folded_blocks(network)
    graph = graph_from_blocks(blocks, network.arch, config.normalize_weights, config.graph_prune)
    if graph.adjacency.nnz == 0:
        raise InputError(f"{network.source or 'the network'} has no edges left in its weight graph")
    labels, true_ncut, k, scored = _true_clustering(config, network, graph)
    job = ShuffleJob(blocks, network.arch, k, int(config.seed), config.normalize_weights, config.graph_prune)
    job = smaller_job(job)
    key = _fingerprint(job, labels if config.partition else None)
    n = int(config.num_shuffles)
    fresh = ({m: {} for m in methods}, {m: {} for m in methods})
    done, redrawn = fresh if config.force else _load_done(paths, key, methods)
    tasks = [(m, i) for m in methods for i in range(n) if i not in done[m]]
    workers = max(1, min(int(config.workers), os.cpu_count() or 1))
    start, last_save = time.perf_counter(), time.perf_counter()
    try:
        with _progress_bar(config, len(tasks), f"shuffles ({workers} workers)") as bar:
            for method, index, value, draws in run_shuffles(job, tasks, workers):
                done[method][index] = value
                if draws > 1:
                    redrawn[method][index] = draws
                bar.update(1)
                if time.perf_counter() - last_save > SAVE_EVERY_S:
                    _save_partial(paths["partial"], key, done, redrawn)
                    last_save = time.perf_counter()
    finally:
        if tasks and any(done.values()):
            _save_partial(paths["partial"], key, done, redrawn)
    shuffles = {m: statistics(true_ncut, [done[m][i] for i in range(n)]) for m in methods}
    for m in methods:  # draws of the shuffles (of the first n) whose first draws had no K-clustering
        shuffles[m]["redrawn"] = _by_index({i: d for i, d in redrawn[m].items() if i < n})
    return {
        "key": key,
        "network": network_record(network),
        "source": network.source,
        "arch": network.arch,
        "n_clusters": k,
        "seed": int(config.seed),
        "normalize_weights": bool(config.normalize_weights),
        "graph_prune": config.graph_prune,
        "graph_nodes": graph.n_nodes,
        "scored": scored,
        "ncut": true_ncut,
        "labels": labels.tolist(),
        "num_shuffles": n,
        "shuffles": shuffles,
        "shuffle_seconds": time.perf_counter() - start,
        "new_shuffles": len(tasks),
        "workers": workers,
    }


def _summary(result: dict) -> str:
    def redrawn(s: dict) -> str:
        count = len(s.get("redrawn", {}))
        return f", {count} redrawn" if count else ""

    return ", ".join(
        f"{m} {s['mean']:.4f}±{s['std']:.4f} (z {s['z']:.2f}, p {s['p']:.3g}{redrawn(s)})"
        for m, s in result["shuffles"].items()
    )


def run(config) -> dict:
    from detection_pipeline.spectral.plots import draw_shuffle_histogram

    if len(config.n_clusters) != 1:
        raise ConfigError("--experiment clusterability takes one --n_clusters value")
    methods = _methods(config)
    if config.checkpoint and Path(config.checkpoint).is_dir():
        from run.clusterability_curve import run_curve

        return run_curve(config, methods)
    target = load_target(config)
    network = target.network
    paths = {
        "result": target.out_dir / RESULT_FILE,
        "partial": target.out_dir / PARTIAL_FILE,
        "picture": target.picture_dir / PICTURE_FILE,
    }
    result = shuffle_test(config, network, methods, paths)
    claim_out_dir(target)
    title = f"{Path(network.source).name or 'network'} · arch {' '.join(map(str, network.arch))}"
    title += f" · K={result['n_clusters']} · {result['scored']}"
    draw_shuffle_histogram(result["ncut"], result["shuffles"], paths["picture"], title)
    write_json_atomic(paths["result"], result)
    paths["partial"].unlink(missing_ok=True)
    print(f"clusterability: n-cut {result['ncut']:.4f} vs {_summary(result)} -> {paths['result']}")
    if not config.quiet:
        print(f"picture -> {paths['picture']}")
    return result
