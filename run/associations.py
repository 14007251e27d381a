"""--experiment associations: all eight association matrices of one network's hidden layers, Newman-Q
modules under each (all Monte Carlo chains run together), and the comparison between them.

Writes into --out (default <network outputs>/associations/): associations.npz (`<association>__hidden<l>`,
full matrices with diagonals), modules_<association>.json (modules.json format), comparison.json,
agreement.png and association_matrices.png (each matrix sorted by its clusters)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

NPZ_FILE = "associations.npz"
MATRICES_PICTURE = "association_matrices.png"


def compute(network, data, options) -> dict:
    """Matrices, Newman results and partitions for every association (nothing written)."""
    from detection_pipeline.associations.matrices import ASSOCIATIONS
    from detection_pipeline.associations.method import (
        batch_from,
        cluster_layers,
        layer_matrices,
        partition_from,
    )

    batch = batch_from(network, data, options)
    matrices = layer_matrices(network, batch, ASSOCIATIONS, options.loss)
    flat = [m for name in ASSOCIATIONS for m in matrices[name]]
    results = cluster_layers(flat, options)
    n_hidden = network.depth - 1
    partitions = {}
    for k, name in enumerate(ASSOCIATIONS):
        partition = partition_from(
            network, name, matrices[name], results[k * n_hidden : (k + 1) * n_hidden], options
        )
        partition.diagnostics["inputs"] = {"source": batch.source, "n": int(len(batch.inputs))}
        partitions[name] = partition
    return {"matrices": matrices, "partitions": partitions, "batch": batch}


def run(config) -> dict:
    from detection_pipeline.associations.compare import compare_many
    from detection_pipeline.associations.draw import draw_sorted_associations
    from run.compare_partitions import write_comparison
    from run.network_source import load_target
    from run.options import newman_line, newman_options
    from utils.atomic_io import atomic_path, write_json_atomic
    from utils.fingerprint import network_record
    from utils.unit_names import flat_unit_names

    options = newman_options(config)  # checks --association and --input_batch
    target = load_target(config)
    data = None
    if options.needs_data:
        from run.lesion import load_test_task

        data = load_test_task(config, target.network)  # checked against the network's own layers
    found = compute(target.network, data, options)
    matrices, partitions = found["matrices"], found["partitions"]
    hidden = range(1, target.network.depth)
    entries = [
        {
            "name": name,
            "labels": partition.by_layer(),
            "matrices": {layer: matrices[name][layer - 1] for layer in hidden},
        }
        for name, partition in partitions.items()
    ]
    comparison = compare_many(entries, config.n_shuffle, config.seed)
    comparison["Q"] = {
        name: [entry["Q"] for entry in p.diagnostics["layers"]] for name, p in partitions.items()
    }
    comparison["effective_clusters"] = {
        name: [entry["effective_clusters"] for entry in p.diagnostics["layers"]]
        for name, p in partitions.items()
    }
    comparison["bisection"] = options.bisection
    comparison["source"] = target.network.source
    comparison["network"] = network_record(target.network)
    comparison["test_accuracy"] = target.network.metrics.get("test_accuracy")
    out = Path(config.out) if config.out else target.out_dir / "associations"
    if not config.out:
        from run.network_source import claim_out_dir

        claim_out_dir(target)
    arrays = {f"{name}__hidden{l + 1}": m for name, per in matrices.items() for l, m in enumerate(per)}
    with atomic_path(out / NPZ_FILE) as tmp:
        with open(tmp, "wb") as handle:
            np.savez(handle, **arrays)
    for name, partition in partitions.items():
        summary = {
            **partition.to_json(),
            "network": network_record(target.network),
            "source": target.network.source,
            "options": newman_line(options),
        }
        summary["association"] = name
        summary["unit_names"] = flat_unit_names(target.network)
        write_json_atomic(out / f"modules_{name}.json", summary)
    labels = {name: [p.by_layer()[layer] for layer in hidden] for name, p in partitions.items()}
    draw_sorted_associations(
        {name: matrices[name] for name in partitions},
        labels,
        out / MATRICES_PICTURE,
        f"{Path(target.network.source).name}: association matrices sorted by Newman clusters "
        f"({options.bisection} bisection)",
    )
    paths = write_comparison(out, comparison, "agreement between associations' Newman partitions (ARI)")
    q_text = " ".join(f"{name} {np.mean(q):.3f}" for name, q in comparison["Q"].items())
    print(f"associations: mean Q over hidden layers: {q_text} -> {out}")
    if not config.quiet:
        print(f"pictures -> {paths['picture']}, {out / MATRICES_PICTURE}")
    return {"comparison": comparison, "out": out, "partitions": partitions, "matrices": matrices}
