"""--experiment export_graph: write a network (--checkpoint FILE, or the edge-pruned run the options name)
as a graph: --graph_format graphml | edgelist | npz to --output PATH (default: network.<format> beside the
run). With --partition modules.json (found on this network) every node carries its module. The file
records the network's fingerprint and source (graph meta, see utils/graph_io.py)."""

from __future__ import annotations

from pathlib import Path

from detection_pipeline.partition import Partition
from run.network_source import claim_out_dir, load_target
from run.parser import ConfigError
from utils.fingerprint import network_record
from utils.graph_io import write_graph

SUFFIX = {"graphml": ".graphml", "edgelist": ".edgelist", "npz": ".npz"}


def run(config) -> Path:
    fmt = config.graph_format
    target = load_target(config)
    labels = None
    if config.partition:
        partition = Partition.from_file(config.partition)
        partition.check_fits(target.network)
        labels = partition.labels
    if config.output:
        output = Path(config.output)
    elif config.checkpoint:
        from run.folders import graph_beside

        output = graph_beside(Path(config.checkpoint), fmt)  # beside the network, as --help says
    else:
        output = target.out_dir / f"network{SUFFIX[fmt]}"
    if output.suffix.lower() != SUFFIX[fmt] and not (fmt == "edgelist" and output.suffix.lower() == ".txt"):
        raise ConfigError(
            f"--output {output} does not end in {SUFFIX[fmt]} for --graph_format {fmt}; the suffix tells "
            "readers the format"
        )
    if output.parent == target.out_dir:  # our own output folder (not a file beside the network)
        claim_out_dir(target)
    write_graph(target.network, output, fmt, labels, meta=network_record(target.network))
    network = target.network
    print(
        f"wrote {output} ({fmt}, {network.n_units} nodes, {network.n_edges()} edges, "
        f"{output.stat().st_size / 1e6:.2f} MB)"
    )
    return output
