"""--experiment spectral_sweep: the spectral clustering at every --n_clusters K, each with
--stability_seeds clustering seeds (--seed, --seed + 1, ...): n-cut per seed and how much the seeds'
partitions agree (adjusted Rand). Writes spectral_sweep.json and spectral_sweep.csv beside the network and
a PNG under --visualization_path."""

from __future__ import annotations

from pathlib import Path

from run.network_source import claim_out_dir, load_target
from run.parser import ConfigError
from utils.atomic_io import write_json_atomic, write_text_atomic

COLUMNS = ("n_clusters", "ncut_mean", "ncut_std", "ncut_min", "ari_mean", "ari_min", "identical")


def table(rows: list[dict]) -> str:
    """CSV text, one line per K."""

    def cell(value):
        return "" if value is None else (f"{value:.6g}" if isinstance(value, float) else str(value))

    lines = [",".join(COLUMNS)] + [",".join(cell(row[c]) for c in COLUMNS) for row in rows]
    return "\n".join(lines) + "\n"


def run(config) -> dict:
    from detection_pipeline.spectral.cluster import check_clusters
    from detection_pipeline.spectral.graph import weight_graph
    from detection_pipeline.spectral.plots import draw_stability
    from detection_pipeline.spectral.stability import sweep

    if config.stability_seeds <= 0:
        raise ConfigError(f"--stability_seeds must be positive, got {config.stability_seeds}")
    from utils.fingerprint import network_record

    target = load_target(config)
    network = target.network
    graph = weight_graph(network, config.normalize_weights, config.graph_prune)
    ks = sorted(set(int(k) for k in config.n_clusters))
    for k in ks:
        check_clusters(k, graph.n_nodes)
    seeds = [int(config.seed) + i for i in range(config.stability_seeds)]
    rows = sweep(graph.adjacency, ks, seeds)
    for row in rows:
        row["labels"] = [graph.expand(lab).tolist() for lab in row["labels"]]
    paths = {
        "json": target.out_dir / "spectral_sweep.json",
        "csv": target.out_dir / "spectral_sweep.csv",
        "picture": target.picture_dir / "spectral_sweep.png",
    }
    arch = " ".join(map(str, network.arch))
    title = f"{Path(network.source).name} · arch {arch} · seeds {seeds[0]}..{seeds[-1]}"
    claim_out_dir(target)
    draw_stability(rows, paths["picture"], title)
    write_text_atomic(paths["csv"], table(rows))
    write_json_atomic(
        paths["json"],
        {
            "network": network_record(network),
            "source": network.source,
            "arch": network.arch,
            "normalize_weights": bool(config.normalize_weights),
            "graph_prune": config.graph_prune,
            "graph_nodes": graph.n_nodes,
            "rows": rows,
        },
    )
    if not config.quiet:
        print(table(rows), end="")
    ncuts = "/".join(f"{r['ncut_mean']:.4g}" for r in rows)
    aris = "/".join("-" if r["ari_mean"] is None else f"{r['ari_mean']:.2f}" for r in rows)
    print(
        f"spectral_sweep: K {'/'.join(map(str, ks))} over {len(seeds)} seeds: mean n-cut {ncuts}, "
        f"mean ARI {aris} -> {paths['csv']}"
    )
    return {"rows": rows, "paths": paths}
