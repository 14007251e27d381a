"""Study (not a timing): a CNN on the 8x8 digits next to an MLP — accuracy dense and at 90% weight
sparsity (cubic pruning while training), and spectral clusterability of the pruned networks against their
`layer` and `layer_nonzero` shuffles.

    python3 benchmarks/cnn_clusterability.py [--seeds 0 1 2] [--num_shuffles 50] [--workers 1]
        [--out /tmp/cnn_clusterability]

Per seed and network, through the CLI (`main.main`), on `--task digits_10way` (CE, Adam lr 0.003, batch
32, 30 epochs, constant learning rate, one torch thread):
- CNN `conv:16:3 pool:2 conv:32:3 pool:2 fc:64` and MLP `64 128 128 10`, trained dense, and trained with
  `--gradual_pruning cubic --target_sparsity 90 --prune_epochs 20 --prune_every 20`;
- `--experiment clusterability` on the pruned network: K = 12 (Filan et al.'s MNIST setting), the channel
  graph for the CNN (one node per channel and fc unit, kernel-slice L1 weights), raw |w| with zero-degree
  units removed (the settings of benchmarks/digits_clusterability.py), `--num_shuffles` shuffles each of
  `layer` and `layer_nonzero`; for the CNN also on the anchor's conv-only graph (`--cnn_graph anchor`: the
  channels of the conv layers, as nn-clustering-pytorch and Filan et al. cluster CNNs).
Prints one row per network and seed (test accuracies, training seconds, n-cut, shuffle mean ± std, z, p)
and writes study.json under --out. p = one-sided (#shuffles with n-cut ≤ true + 1) / (N + 1): small p means
more clusterable than the shuffles.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

COMMON = ["--task", "digits_10way", "--loss", "CE", "--lr", "0.003", "--batch_size", "32", "--epochs", "30"]
NETWORKS = {
    "CNN": ["--model", "CNN", "--cnn", "conv:16:3 pool:2 conv:32:3 pool:2 fc:64"],
    "MLP": ["--arch", "64", "128", "128", "10"],
}
CUBIC = [
    "--gradual_pruning",
    "cubic",
    "--target_sparsity",
    "90",
    "--prune_epochs",
    "20",
    "--prune_every",
    "20",
]
CLUSTERABILITY = ["--n_clusters", "12", "--normalize_weights", "False", "--graph_prune", "zero_degree"]
CLUSTERABILITY += ["--shuffle_method", "layer", "layer_nonzero"]


def call(argv: list[str]) -> None:
    import main

    if main.main([*argv, "--quiet"]) != 0:
        raise SystemExit(f"failed: {' '.join(argv)}")


def run_one(name: str, seed: int, out: Path, args) -> dict:
    place = ["--result_path", str(out / "r"), "--visualization_path", str(out / "v"), "--seed", str(seed)]
    options = [*COMMON, *NETWORKS[name], *place]
    row = {"network": name, "seed": seed}
    for label, extra in (("dense", []), ("sparse", CUBIC)):
        start = time.perf_counter()
        call(["--experiment", "train", *options, *extra])
        row[f"{label}_seconds"] = time.perf_counter() - start
        metrics = sorted((out / "r").rglob("metrics.json"), key=lambda p: p.stat().st_mtime)[-1]
        facts = json.loads(metrics.read_text())
        row[f"{label}_accuracy"] = facts["test_accuracy"]
        row[f"{label}_density"] = facts.get("density") or 100.0
        row[f"{label}_model"] = str(metrics.parent / "model.pt")
    shuffles = ["--num_shuffles", str(args.num_shuffles), "--workers", str(args.workers)]
    graphs = {"": []} if name == "MLP" else {"": [], "anchor_": ["--cnn_graph", "anchor"]}
    for prefix, graph in graphs.items():
        call(["--experiment", "clusterability", "--checkpoint", row["sparse_model"], *place, *CLUSTERABILITY,
              *shuffles, *graph])  # fmt: skip
        files = sorted((out / "r").rglob("clusterability.json"))
        result = json.loads(next(f for f in files if ("anchor_graph" in f.parts) == bool(prefix)).read_text())
        row[f"{prefix}ncut"] = result["ncut"]
        for method in ("layer", "layer_nonzero"):
            row[f"{prefix}{method}"] = {k: result["shuffles"][method][k] for k in ("mean", "std", "z", "p")}
    return row


def print_row(row: dict, prefix: str = "", label: str = "") -> None:
    shuffle = "".join(
        f" {row[prefix + m]['mean']:.3f} ± {row[prefix + m]['std']:.3f} ({row[prefix + m]['z']:.1f}, "
        f"{row[prefix + m]['p']:.3f}) |"
        for m in ("layer", "layer_nonzero")
    )
    print(
        f"| {row['network']}{label} | {row['seed']} | "
        f"{row['dense_accuracy']:.2f} / {row['sparse_accuracy']:.2f} | "
        f"{row['dense_seconds']:.0f} / {row['sparse_seconds']:.0f} | {row[prefix + 'ncut']:.3f} |{shuffle}",
        flush=True,
    )


def main_study() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--num_shuffles", type=int, default=50)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--out", type=Path, default=None, help="default: a temporary folder")
    args = parser.parse_args()
    import torch

    torch.set_num_threads(1)  # small networks: a second thread only waits (badly so on a shared machine)
    out = args.out or Path(tempfile.mkdtemp(prefix="cnn_clusterability_"))
    rows = []
    print(
        "| network | seed | test acc dense / 90% | train s dense / 90% | n-cut | layer mean ± std (z, p) "
        "| layer_nonzero mean ± std (z, p) |"
    )
    print("|---|---|---|---|---|---|---|")
    for name in NETWORKS:
        for seed in args.seeds:
            row = run_one(name, seed, out / name / f"seed{seed}", args)
            rows.append(row)
            print_row(row)
            if "anchor_ncut" in row:
                print_row(row, "anchor_", " (anchor graph: conv channels only)")
    (out / "study.json").write_text(json.dumps(rows, indent=1))
    print(f"study.json -> {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main_study())
