"""Timing: trace a ResNet-18 (written out below, random weights, 3x32x32 input, 10 classes) into its channel
graph, then spectral clustering and a `layer` shuffle test on that graph.

    python3 benchmarks/trace_resnet18.py [--n_clusters 8] [--num_shuffles 20] [--workers 1]

ResNet-18 as in He et al. / torchvision: 7x7/2 stem conv + BN + ReLU + 3x3/2 max pool, four stages of two
BasicBlocks (64, 128, 256, 512 channels; a 1x1/2 conv + BN downsample on the first block of stages 2-4),
global average pool, linear. Batch norm statistics are randomised so that folding matters. Reports CPU
seconds (time.process_time, the machine is shared) and wall seconds for: torch.export + tracing into the
LayeredNetwork (models/trace.py), spectral clustering (--method spectral, K = --n_clusters, normalised |w|
graph), and --num_shuffles `layer` shuffles (the clusterability test's seeded shuffles), plus the graph's size
and the test's n-cut, mean ± std, z and p.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402
from torch import nn  # noqa: E402


class BasicBlock(nn.Module):
    def __init__(self, c_in: int, c_out: int, stride: int):
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(c_out)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(c_out)
        self.downsample = None
        if stride != 1 or c_in != c_out:
            self.downsample = nn.Sequential(
                nn.Conv2d(c_in, c_out, 1, stride, bias=False), nn.BatchNorm2d(c_out)
            )

    def forward(self, x):
        identity = x if self.downsample is None else self.downsample(x)
        out = torch.relu(self.bn1(self.conv1(x)))
        return torch.relu(self.bn2(self.conv2(out)) + identity)


class ResNet18(nn.Module):
    def __init__(self, classes: int = 10):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 64, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        widths, c_in, stages = (64, 128, 256, 512), 64, []
        for stage, width in enumerate(widths):
            stride = 1 if stage == 0 else 2
            stages.append(nn.Sequential(BasicBlock(c_in, width, stride), BasicBlock(width, width, 1)))
            c_in = width
        self.layer1, self.layer2, self.layer3, self.layer4 = stages
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(512, classes)

    def forward(self, x):
        x = self.maxpool(torch.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.fc(torch.flatten(self.avgpool(x), 1))


def timed(function):
    cpu, wall = time.process_time(), time.perf_counter()
    value = function()
    return value, time.process_time() - cpu, time.perf_counter() - wall


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--n_clusters", type=int, default=8)
    parser.add_argument("--num_shuffles", type=int, default=20)
    parser.add_argument("--workers", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(1)
    torch.manual_seed(0)
    model = ResNet18().eval()
    for module in model.modules():
        if isinstance(module, nn.BatchNorm2d):
            module.running_mean.normal_(0, 0.1)
            module.running_var.uniform_(0.5, 2.0)
    from detection_pipeline.spectral.cluster import SpectralOptions, spectral_method
    from detection_pipeline.spectral.graph import folded_blocks
    from detection_pipeline.spectral.significance import ShuffleJob, run_shuffles, smaller_job, statistics
    from models.trace import trace_module

    example = torch.randn(2, 3, 32, 32)
    traced, trace_cpu, trace_wall = timed(lambda: trace_module(model, example, "ResNet18"))
    network = traced.network
    with torch.no_grad():
        assert torch.allclose(traced.logits(example), model(example), atol=1e-4)
    print(f"traced ResNet-18: arch {network.arch}")
    print(f"  {network.n_units} units, {network.n_edges()} edges, {len(network.skips)} skip blocks")
    print(f"  trace (torch.export + unit graph): {trace_cpu:.2f} s CPU, {trace_wall:.2f} s wall")
    options = SpectralOptions(n_clusters=args.n_clusters, seed=0)
    partition, cluster_cpu, cluster_wall = timed(lambda: spectral_method(network, None, options))
    ncut = partition.diagnostics["ncut"]
    print(
        f"  spectral K={args.n_clusters}: n-cut {ncut:.4f}, {cluster_cpu:.2f} s CPU, "
        f"{cluster_wall:.2f} s wall"
    )
    job = smaller_job(ShuffleJob(folded_blocks(network), network.arch, args.n_clusters, 0))
    tasks = [("layer", i) for i in range(args.num_shuffles)]
    ncuts, shuffle_cpu, shuffle_wall = timed(
        lambda: [v for _, _, v in run_shuffles(job, tasks, args.workers)]
    )
    stats = statistics(ncut, ncuts)
    print(
        f"  {args.num_shuffles} layer shuffles: mean {stats['mean']:.4f} ± {stats['std']:.4f}, "
        f"z {stats['z']:.2f}, "
        f"p {stats['p']:.3f}; {shuffle_cpu:.2f} s CPU, {shuffle_wall:.2f} s wall (workers {args.workers}; "
        "CPU time of this process only)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
