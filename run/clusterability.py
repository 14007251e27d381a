"""--experiment clusterability: is the network more clusterable than its shuffles? (docs/spectral.md)

The true n-cut (of the network's spectral clustering at --n_clusters, or of --partition's modules) against
the n-cuts of --num_shuffles shuffled networks per --shuffle_method, clustered the same way: the true
network by scikit-learn's call, the shuffles by --shuffle_solver (the fast path by default; see
docs/clusterability.md). Writes clusterability.json beside the network and a histogram PNG under
--visualization_path. Shuffles run in --workers processes; every finished shuffle is kept in
clusterability.partial.json (atomically), so a killed run resumes where it stopped, and a finished one is
extended when --num_shuffles grows.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from pathlib import Path

import numpy as np

from run.network_source import claim_out_dir, load_target
from run.parser import ConfigError
from run.reporting import progress_bar
from utils.atomic_io import write_json_atomic
from utils.errors import InputError
from utils.files import read_json

RESULT_FILE = "clusterability.json"
PARTIAL_FILE = "clusterability.partial.json"
PICTURE_FILE = "clusterability.png"
SAVE_EVERY_S = 1.0


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
    if job.solver != "exact":  # exact-path keys stay as they were, so older results are reused
        settings.append(job.solver)
    digest.update(json.dumps(settings).encode())
    if labels is not None:
        digest.update(np.asarray(labels, np.int64).tobytes())
    return digest.hexdigest()


def _load_done(paths: dict, key: str, methods: list[str], solver: str) -> tuple[dict, dict, dict]:
    """(n-cuts, routes, draws) of the shuffles already computed for this key, each {method: {index: value}}
    (draws only for those redrawn): the partial file first, else a finished result. A stored n-cut without
    its route (older files) came from the exact path when the key is the exact path's, else "fast"."""
    done: dict[str, dict[int, float]] = {m: {} for m in methods}
    routes: dict[str, dict[int, str]] = {m: {} for m in methods}
    redrawn: dict[str, dict[int, int]] = {m: {} for m in methods}
    unknown = "exact" if solver == "exact" else "fast"
    for kind in ("partial", "result"):
        if not paths[kind].exists():
            continue
        try:
            data = read_json(paths[kind], "clusterability file")
        except InputError:
            continue  # damaged (or not a regular file): computed again
        if not isinstance(data, dict):
            continue
        if data.get("key") != key:
            continue
        for method in methods:
            if kind == "partial":
                stored = data.get("done", {}).get(method, {})
                done[method].update({int(i): float(v) for i, v in stored.items()})
                stored_routes = data.get("routes", {}).get(method, {})
                routes[method].update({int(i): str(stored_routes.get(i, unknown)) for i in stored})
                draws = data.get("redrawn", {}).get(method, {})
            else:
                entry = data.get("shuffles", {}).get(method, {})
                ncuts = entry.get("ncuts", [])
                stored_routes = entry.get("routes", [unknown] * len(ncuts))
                done[method].update({i: float(v) for i, v in enumerate(ncuts)})
                routes[method].update({i: str(r) for i, r in enumerate(stored_routes)})
                draws = entry.get("redrawn", {})
            redrawn[method].update({int(i): int(v) for i, v in draws.items()})
        return done, routes, redrawn
    return done, routes, redrawn


def _by_index(values: dict) -> dict:
    return {str(i): v for i, v in sorted(values.items())}


def _save_partial(path: Path, key: str, done: dict, routes: dict, redrawn: dict) -> None:
    write_json_atomic(
        path,
        {
            "key": key,
            "done": {m: _by_index(d) for m, d in done.items()},
            "routes": {m: _by_index(r) for m, r in routes.items()},
            "redrawn": {m: _by_index(d) for m, d in redrawn.items()},
        },
    )


def _route_counts(routes: list[str]) -> dict[str, int]:
    """How many shuffles each route computed, e.g. {"fast-gram": 100}."""
    return {r: routes.count(r) for r in sorted(set(routes))}


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
    solver = config.shuffle_solver
    job = ShuffleJob(
        blocks, network.arch, k, int(config.seed), config.normalize_weights, config.graph_prune, solver
    )
    job = smaller_job(job)
    key = _fingerprint(job, labels if config.partition else None)
    n = int(config.num_shuffles)
    fresh = tuple({m: {} for m in methods} for _ in range(3))
    done, routes, redrawn = fresh if config.force else _load_done(paths, key, methods, solver)
    tasks = [(m, i) for m in methods for i in range(n) if i not in done[m]]
    workers = max(1, min(int(config.workers), os.cpu_count() or 1))
    start, last_save = time.perf_counter(), time.perf_counter()
    try:
        with progress_bar(config, len(tasks), f"shuffles, {solver} path ({workers} workers)") as bar:
            for method, index, value, route, draws in run_shuffles(job, tasks, workers):
                done[method][index] = value
                routes[method][index] = route
                if draws > 1:
                    redrawn[method][index] = draws
                bar.update(1)
                if time.perf_counter() - last_save > SAVE_EVERY_S:
                    _save_partial(paths["partial"], key, done, routes, redrawn)
                    last_save = time.perf_counter()
    finally:
        if tasks and any(done.values()):
            _save_partial(paths["partial"], key, done, routes, redrawn)
    shuffles = {}
    for m in methods:
        shuffles[m] = statistics(true_ncut, [done[m][i] for i in range(n)])
        shuffles[m]["routes"] = [routes[m][i] for i in range(n)]
        shuffles[m]["route_counts"] = _route_counts(shuffles[m]["routes"])
        # draws of the shuffles (of the first n) whose first draws had no K-clustering
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
        "ncut_route": "partition" if config.partition else "exact",
        "shuffle_solver": solver,
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
        from run.network_source import check_restated

        check_restated(config)
        return run_curve(config, methods, shuffle_test)
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
    from utils.unit_names import flat_unit_names

    result["unit_names"] = flat_unit_names(network)  # beside "labels", one per unit
    write_json_atomic(paths["result"], result)
    paths["partial"].unlink(missing_ok=True)
    print(f"clusterability: n-cut {result['ncut']:.4f} vs {_summary(result)} -> {paths['result']}")
    if not config.quiet:
        print(f"picture -> {paths['picture']}")
    return result
