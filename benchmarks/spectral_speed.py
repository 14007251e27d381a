"""The clusterability shuffles' fast path against the anchors' scikit-learn call, in CPU seconds.

    python3 benchmarks/spectral_speed.py [--num_shuffles 100] [--n_clusters 12] [--resnet_shuffles 20]
        [--skip_trained] [--skip_resnet]

Everything runs in this one process with one BLAS/OpenMP thread (threadpoolctl) and is timed with
time.process_time (CPU seconds: the machine is shared, so wall time would tilt the ratio).

1. Speed. A random 784-256-256-256-256-10 MLP (Kaiming normal, seed 0), `layer` shuffles 0..N-1 as
   `--experiment clusterability` draws them (seed 0). Timed side by side: the anchors' call
   (`SpectralClustering(n_clusters=K, eigen_solver="arpack", affinity="precomputed", assign_labels="kmeans",
   n_init=25)`.fit) on each shuffled graph, the graph building it needs (shuffle, normalise, sparse graph,
   pruning) and the n-cut, and the fast path end to end (shuffle, normalise, embedding, k-means, n-cut).
   Target: fast ≤ 1/8 of the anchors' calls.
2. Fidelity. A 64-256-256-256-256-10 MLP trained on scikit-learn's 8×8 digits (Adam, 30 epochs, seed 0):
   N `layer` shuffles on each path (the same shuffled weights): two-sample KS p, means ± standard error,
   and each path's test verdict (p < 0.05) against the true network's n-cut (the anchors' call).
3. Scale. A ResNet-18 (plain torch, random init, 1000 classes) as a layered channel graph: one node per
   channel of every conv output (3 input channels, conv1, 16 convs of the four stages) and per fc unit;
   conv -> conv edges weigh the L1 norm of the kernel slice with batch norm folded (utils/cnn_graph.py's
   rule); each residual addition is a skip block from the block's input channels to its second conv's
   channels: the identity (weight 1 per channel) or the folded 1x1 downsampling conv. 4,907 nodes. The
   true network by the anchors' call (n_init 100 above 2000 nodes) and `--resnet_shuffles` shuffles by the
   fast path (not bipartite: scikit-learn's embedding + the batched k-means).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

MLP = [784, 256, 256, 256, 256, 10]


def cpu(function, *args):
    start = time.process_time()
    value = function(*args)
    return value, time.process_time() - start


def random_blocks(arch: list[int], seed: int = 0):
    from detection_pipeline.spectral.graph import WeightBlock

    rng = np.random.default_rng(seed)
    blocks = []
    for i, (fan_in, fan_out) in enumerate(zip(arch[:-1], arch[1:])):
        weight = rng.standard_normal((fan_out, fan_in)) * np.sqrt(2 / fan_in)
        blocks.append(WeightBlock(i, i + 1, weight.astype(np.float32)))
    return blocks


def speed(args) -> None:
    from detection_pipeline.spectral.cluster import ncut, spectral_labels
    from detection_pipeline.spectral.significance import ShuffleJob, fast_shuffled_ncut, shuffled_graph

    job = ShuffleJob(random_blocks(MLP), MLP, args.n_clusters, seed=0)
    n = args.num_shuffles
    graphs, t_graph = cpu(lambda: [shuffled_graph(job, "layer", i) for i in range(n)])
    labels, t_anchor = cpu(lambda: [spectral_labels(g.adjacency, args.n_clusters, s) for g, s in graphs])
    exact, t_ncut = cpu(lambda: [ncut(g.adjacency, lab) for (g, _), lab in zip(graphs, labels)])
    fast_job = ShuffleJob(job.blocks, MLP, args.n_clusters, seed=0, solver="fast")
    fast, t_fast = cpu(lambda: [fast_shuffled_ncut(fast_job, "layer", i) for i in range(n)])
    routes = sorted({r for _, r in fast})
    values = np.array([v for v, _ in fast])
    print(f"## Speed: {n} `layer` shuffles of a random {'-'.join(map(str, MLP))} MLP, K = {args.n_clusters}")
    print("| what | CPU s | per shuffle | vs the anchors' calls |")
    print("|---|---|---|---|")
    rows = [
        ("anchors' SpectralClustering calls", t_anchor),
        ("exact path: + graph building and n-cut", t_anchor + t_graph + t_ncut),
        (f"fast path, end to end ({', '.join(routes)})", t_fast),
    ]
    for name, seconds in rows:
        print(f"| {name} | {seconds:.2f} | {seconds / n * 1000:.1f} ms | {t_anchor / seconds:.2f}× |")
    print(f"n-cut mean: exact {np.mean(exact):.4f} ± {np.std(exact):.4f}, fast {values.mean():.4f} ± "
          f"{values.std():.4f}; target fast ≤ 1/8 of the anchors' calls: "
          f"{'met' if t_fast * 8 <= t_anchor else 'MISSED'}")  # fmt: skip


def trained_blocks(seed: int = 0):
    """64-256x4-10 ReLU MLP trained on the 8x8 digits (Adam lr 1e-3, batch 64, 30 epochs)."""
    import torch
    from sklearn.datasets import load_digits

    from detection_pipeline.spectral.graph import WeightBlock

    torch.manual_seed(seed)
    digits = load_digits()
    x = torch.tensor(digits.data / 16.0, dtype=torch.float32)
    y = torch.tensor(digits.target)
    arch = [64, 256, 256, 256, 256, 10]
    layers = []
    for fan_in, fan_out in zip(arch[:-1], arch[1:]):
        layers += [torch.nn.Linear(fan_in, fan_out), torch.nn.ReLU()]
    model = torch.nn.Sequential(*layers[:-1])
    optimiser = torch.optim.Adam(model.parameters(), lr=1e-3)
    generator = torch.Generator().manual_seed(seed)
    for _ in range(30):
        for batch in torch.randperm(len(x), generator=generator).split(64):
            optimiser.zero_grad()
            torch.nn.functional.cross_entropy(model(x[batch]), y[batch]).backward()
            optimiser.step()
    accuracy = float((model(x).argmax(1) == y).float().mean())
    linears = [m for m in model if isinstance(m, torch.nn.Linear)]
    blocks = [WeightBlock(i, i + 1, m.weight.detach().numpy().copy()) for i, m in enumerate(linears)]
    return blocks, arch, accuracy


def fidelity(args) -> None:
    from scipy.stats import ks_2samp

    from detection_pipeline.spectral.cluster import ncut, spectral_labels
    from detection_pipeline.spectral.graph import graph_from_blocks
    from detection_pipeline.spectral.significance import ShuffleJob, shuffled_ncut_info, statistics

    (blocks, arch, accuracy), t_train = cpu(trained_blocks)
    graph = graph_from_blocks(blocks, arch)
    true = ncut(graph.adjacency, spectral_labels(graph.adjacency, args.n_clusters, 0))
    values, seconds = {}, {}
    for solver in ("exact", "fast"):
        job = ShuffleJob(blocks, arch, args.n_clusters, seed=0, solver=solver)
        results, seconds[solver] = cpu(
            lambda job=job: [shuffled_ncut_info(job, "layer", i) for i in range(args.num_shuffles)]
        )
        values[solver] = np.array([v for v, _, _ in results])
    exact, fast = values["exact"], values["fast"]
    se = np.sqrt(exact.var(ddof=1) / exact.size + fast.var(ddof=1) / fast.size)
    stats = {s: statistics(true, values[s]) for s in values}
    print(f"\n## Fidelity: {args.num_shuffles} `layer` shuffles of a trained {'-'.join(map(str, arch))} MLP "
          f"(digits, train accuracy {accuracy:.3f}, {t_train:.0f} CPU s), K = {args.n_clusters}")  # fmt: skip
    print(f"true n-cut {true:.4f}")
    print("| path | mean ± std | z | p | verdict (p < 0.05) | CPU s |")
    print("|---|---|---|---|---|---|")
    for s in ("exact", "fast"):
        st = stats[s]
        print(f"| {s} | {st['mean']:.4f} ± {st['std']:.4f} | {st['z']:.2f} | {st['p']:.3f} | "
              f"{'clusterable' if st['p'] < 0.05 else 'not'} | {seconds[s]:.1f} |")  # fmt: skip
    ks = ks_2samp(exact, fast).pvalue
    same = (stats["exact"]["p"] < 0.05) == (stats["fast"]["p"] < 0.05)
    gap = abs(exact.mean() - fast.mean())
    print(f"KS p {ks:.3f} (> 0.05: {ks > 0.05}); |mean difference| {gap:.4f} vs standard error {se:.4f} "
          f"(within: {gap <= se}); same verdict: {same}")  # fmt: skip


# -- ResNet-18 ----------------------------------------------------------------------------------------
def resnet18():
    """torchvision's ResNet-18 layout in plain torch (BasicBlock ×2 per stage, 64-128-256-512, 1000
    classes), default init. Returns the model."""
    import torch
    from torch import nn

    class Basic(nn.Module):
        def __init__(self, inputs: int, outputs: int, stride: int):
            super().__init__()
            self.conv1 = nn.Conv2d(inputs, outputs, 3, stride, 1, bias=False)
            self.bn1 = nn.BatchNorm2d(outputs)
            self.conv2 = nn.Conv2d(outputs, outputs, 3, 1, 1, bias=False)
            self.bn2 = nn.BatchNorm2d(outputs)
            self.down = None
            if stride != 1 or inputs != outputs:
                self.down = nn.Sequential(
                    nn.Conv2d(inputs, outputs, 1, stride, bias=False), nn.BatchNorm2d(outputs)
                )

        def forward(self, x):
            out = torch.relu(self.bn1(self.conv1(x)))
            out = self.bn2(self.conv2(out))
            return torch.relu(out + (x if self.down is None else self.down(x)))

    class ResNet18(nn.Module):
        def __init__(self, classes: int = 1000):
            super().__init__()
            self.conv1 = nn.Conv2d(3, 64, 7, 2, 3, bias=False)
            self.bn1 = nn.BatchNorm2d(64)
            widths, blocks, inputs = (64, 128, 256, 512), [], 64
            for stage, width in enumerate(widths):
                for i in range(2):
                    blocks.append(Basic(inputs, width, 2 if (stage > 0 and i == 0) else 1))
                    inputs = width
            self.blocks = nn.ModuleList(blocks)
            self.fc = nn.Linear(512, classes)
            for m in self.modules():
                if isinstance(m, nn.Conv2d):
                    nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

        def forward(self, x):
            x = nn.functional.max_pool2d(torch.relu(self.bn1(self.conv1(x))), 3, 2, 1)
            for block in self.blocks:
                x = block(x)
            return self.fc(torch.flatten(nn.functional.adaptive_avg_pool2d(x, 1), 1))

    return ResNet18()


def resnet_channel_graph(model):
    """(blocks, arch) of the layered channel graph described in the module docstring."""
    from detection_pipeline.spectral.graph import WeightBlock

    def folded(conv, bn) -> np.ndarray:
        kernel = conv.weight.detach().numpy()
        scale = (bn.weight / (bn.running_var + bn.eps).sqrt()).detach().numpy()
        return (np.abs(kernel).sum(axis=(2, 3)) * np.abs(scale)[:, None]).astype(np.float32)

    arch, blocks = [3, 64], [WeightBlock(0, 1, folded(model.conv1, model.bn1))]
    for block in model.blocks:
        start = len(arch) - 1  # the block's input channels
        blocks.append(WeightBlock(start, start + 1, folded(block.conv1, block.bn1)))
        blocks.append(WeightBlock(start + 1, start + 2, folded(block.conv2, block.bn2)))
        width = block.conv2.out_channels
        if block.down is None:
            skip = np.eye(width, dtype=np.float32)
        else:
            skip = folded(block.down[0], block.down[1])
        blocks.append(WeightBlock(start, start + 2, skip))
        arch += [block.conv1.out_channels, width]
    blocks.append(WeightBlock(len(arch) - 1, len(arch), np.abs(model.fc.weight.detach().numpy())))
    arch.append(model.fc.out_features)
    blocks.sort(key=lambda b: (b.target - b.source != 1, b.source))  # consecutive layers first, then skips
    return blocks, arch


def resnet(args) -> None:
    import torch

    from detection_pipeline.spectral.cluster import ncut, spectral_labels
    from detection_pipeline.spectral.graph import graph_from_blocks
    from detection_pipeline.spectral.significance import ShuffleJob, fast_shuffled_ncut

    torch.manual_seed(0)
    blocks, arch = resnet_channel_graph(resnet18())
    graph, t_graph = cpu(graph_from_blocks, blocks, arch)
    labels, t_true = cpu(spectral_labels, graph.adjacency, args.n_clusters, 0)
    true = ncut(graph.adjacency, labels)
    job = ShuffleJob(blocks, arch, args.n_clusters, seed=0, solver="fast")
    results, t_fast = cpu(lambda: [fast_shuffled_ncut(job, "layer", i) for i in range(args.resnet_shuffles)])
    values = np.array([v for v, _ in results])
    print(f"\n## ResNet-18 channel graph (random init): {graph.n_nodes} nodes, "
          f"{graph.adjacency.nnz // 2} edges, K = {args.n_clusters}")  # fmt: skip
    print(f"graph {t_graph:.2f} CPU s; true network, the anchors' call (n_init 100): {t_true:.1f} CPU s, "
          f"n-cut {true:.4f}")  # fmt: skip
    found = [r for _, r in results]
    routes = ", ".join(f"{r} ×{found.count(r)}" for r in sorted(set(found)))
    each = t_fast / args.resnet_shuffles
    print(f"{args.resnet_shuffles} `layer` shuffles, fast path ({routes}): {t_fast:.1f} CPU s ({each:.2f} s "
          f"each); n-cut {values.mean():.4f} ± {values.std():.4f}")  # fmt: skip


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--num_shuffles", type=int, default=100)
    parser.add_argument("--n_clusters", type=int, default=12)
    parser.add_argument("--resnet_shuffles", type=int, default=20)
    parser.add_argument("--skip_speed", action="store_true")
    parser.add_argument("--skip_trained", action="store_true")
    parser.add_argument("--skip_resnet", action="store_true")
    args = parser.parse_args()
    import scipy.sparse.linalg  # noqa: F401 - loaded before the thread limit, so that the limit reaches it
    import sklearn.cluster  # noqa: F401
    import torch
    from threadpoolctl import threadpool_limits

    torch.set_num_threads(1)
    import os

    print(
        f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs (shared machine); one thread; CPU s"
    )
    with threadpool_limits(1):
        if not args.skip_speed:
            speed(args)
        if not args.skip_trained:
            fidelity(args)
        if not args.skip_resnet:
            resnet(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
