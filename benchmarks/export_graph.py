"""Time and size of graph export (target: a 1568-784-784-784-3 network at 1% density in under 2 s).

    python3 benchmarks/export_graph.py [--repeats 3]

Builds the network with random weights and random masks at 1% density (fixed seed), then for each format
(graphml, edgelist, npz) times `write_graph` (median of --repeats), reads the file back with `read_graph`
(timed too), checks that the read network has the same edges and weights, and prints the file size.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from utils.graph_io import GRAPH_FORMATS, read_graph, write_graph  # noqa: E402
from utils.network import LayeredNetwork  # noqa: E402

ARCH = [1568, 784, 784, 784, 3]


def network(density: float = 0.01, seed: int = 0) -> LayeredNetwork:
    rng = np.random.default_rng(seed)
    weights = [rng.normal(size=(b, a)).astype(np.float32) for a, b in zip(ARCH[:-1], ARCH[1:])]
    masks = [(rng.random(w.shape) < density).astype(np.uint8) for w in weights]
    biases = [rng.normal(size=b).astype(np.float32) for b in ARCH[1:]]
    return LayeredNetwork(ARCH, weights, biases, masks)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    net = network()
    print(f"arch {' '.join(map(str, ARCH))}, {net.n_edges()} edges ({net.density:.2f}% density)")
    print(f"{'format':<9} {'write s':>8} {'read s':>8} {'size MB':>8}  same network")
    with tempfile.TemporaryDirectory() as tmp:
        for fmt in GRAPH_FORMATS:
            path = Path(tmp) / f"net.{fmt}"
            times = []
            for _ in range(args.repeats):
                start = time.perf_counter()
                write_graph(net, path, fmt)
                times.append(time.perf_counter() - start)
            start = time.perf_counter()
            back = read_graph(path)
            read_s = time.perf_counter() - start
            same = (abs(back.adjacency(absolute=False) - net.adjacency(absolute=False)) > 1e-6).nnz == 0
            size = path.stat().st_size / 1e6
            print(f"{fmt:<9} {statistics.median(times):8.3f} {read_s:8.3f} {size:8.2f}  {same}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
