"""`--experiment clusterability --checkpoint RUN_FOLDER`: the learning curve of clusterability.

The run folder's checkpoints/epoch-NNNN.pt (written by `train --checkpoint_every N`) are each scored like
one network (true n-cut and shuffled n-cuts, resumable per checkpoint); clusterability_curve.json and a
PNG of n-cut against epoch (true, and shuffled mean ± std per shuffle method) are written.
"""

from __future__ import annotations

import re
from pathlib import Path

from run.network_source import checkpoint_out_dir, picture_dir
from run.parser import ConfigError
from utils.atomic_io import write_json_atomic
from utils.errors import InputError
from utils.network_files import network_from_state_dict

CHECKPOINT_DIR = "checkpoints"
_EPOCH = re.compile(r"epoch-(\d+)\.pt$")


def checkpoint_name(epoch: int) -> str:
    return f"{CHECKPOINT_DIR}/epoch-{epoch:04d}.pt"


def save_checkpoints(report, model, run, every: int):
    """Wrap an epoch callback (epoch, train_loss, val_accuracy) so that it also saves the model's state as
    checkpoints/epoch-NNNN.pt after every `every` epochs (NNNN = epochs done); epoch 0 (the initial
    weights) is saved at once."""
    from utils.training import clone_state

    run.save_torch(checkpoint_name(0), clone_state(model))

    def callback(epoch, train_loss, val_accuracy):
        report(epoch, train_loss, val_accuracy)
        if (epoch + 1) % every == 0:
            run.save_torch(checkpoint_name(epoch + 1), clone_state(model))

    return callback


def checkpoint_files(folder: Path) -> list[tuple[int, Path]]:
    """(epoch, file) of folder/checkpoints/epoch-*.pt (or folder/epoch-*.pt), by epoch."""
    found = []
    for place in (folder / CHECKPOINT_DIR, folder):
        for file in place.glob("epoch-*.pt"):
            match = _EPOCH.search(file.name)
            if match:
                found.append((int(match.group(1)), file))
        if found:
            break
    return sorted(found)


def run_curve(config, methods: list[str], shuffle_test) -> dict:
    """The shuffle test (`shuffle_test(config, network, methods, paths)`, run/clusterability.py's, passed
    in so the two modules do not import each other) of every checkpoint of --checkpoint, as a curve."""
    from detection_pipeline.spectral.cluster import check_clusters
    from detection_pipeline.spectral.graph import weight_graph
    from detection_pipeline.spectral.plots import draw_learning_curve
    from run.runs import load_checkpoint

    folder = Path(config.checkpoint).resolve()
    files = checkpoint_files(folder)
    if not files:
        raise InputError(
            f"{folder} holds no checkpoints/epoch-*.pt; train with --checkpoint_every N (and --force to "
            "retrain a finished run), or pass one network file"
        )
    if config.partition:
        raise ConfigError("--partition scores one network; leave it out for a learning curve")
    networks = []
    for epoch, file in files:  # check every checkpoint before anything is written
        network = network_from_state_dict(load_checkpoint(file), str(file), config.hidden_layer_activation)
        check_clusters(
            int(config.n_clusters[0]),
            weight_graph(network, config.normalize_weights, config.graph_prune).n_nodes,
        )
        networks.append((epoch, network))
    out_dir = checkpoint_out_dir(config, folder).with_name(checkpoint_out_dir(config, folder).name + "_curve")
    rows = []
    for epoch, network in networks:
        paths = {
            "result": out_dir / f"epoch-{epoch:04d}.clusterability.json",
            "partial": out_dir / f"epoch-{epoch:04d}.partial.json",
        }
        result = shuffle_test(config, network, methods, paths)
        write_json_atomic(paths["result"], result)
        paths["partial"].unlink(missing_ok=True)
        rows.append(
            {
                "epoch": epoch,
                "ncut": result["ncut"],
                "shuffles": {
                    m: {k: s[k] for k in ("mean", "std", "z", "p")} for m, s in result["shuffles"].items()
                },
            }
        )
    curve = {"source": str(folder), "n_clusters": int(config.n_clusters[0]), "rows": rows}
    picture = picture_dir(config, out_dir) / "clusterability_curve.png"
    draw_learning_curve(rows, picture, f"{folder.name} · K={curve['n_clusters']}")
    write_json_atomic(out_dir / "clusterability_curve.json", curve)
    first, last = rows[0], rows[-1]
    print(
        f"clusterability curve: {len(rows)} checkpoints, n-cut {first['ncut']:.4f} (epoch {first['epoch']})"
        f" -> {last['ncut']:.4f} (epoch {last['epoch']}) -> {out_dir / 'clusterability_curve.json'}"
    )
    return curve
