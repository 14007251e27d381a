"""--experiment prune_edges: train dense, then one edge search per --pruning_gradient value."""

from run.common import prepare
from run.pruning_runs import prune_edges_from_dense
from run.reporting import print_pruned


def run(config) -> list[dict]:
    ctx = prepare(config)
    results = []
    for step, _, metrics in prune_edges_from_dense(ctx):
        print_pruned(config, f"edges step {step}", metrics)
        results.append(metrics)
    return results
