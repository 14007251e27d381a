"""--experiment prune: --prune_units 1 prunes units after dense training (one search per
--unit_pruning_gradient value); --prune_units 0 prunes edges of the unit-pruned network the same options
name (one search per --pruning_gradient value, each from the same retrained start)."""

from run.common import prepare
from run.pruning_runs import prune_edges_after_units, prune_units, unit_steps
from run.reporting import print_pruned


def run(config) -> list[dict]:
    ctx = prepare(config)
    results = []
    if config.prune_units:
        for step in unit_steps(config):
            model, metrics = prune_units(ctx, step)
            print_pruned(config, f"units step {step}", metrics)
            results.append(metrics)
    else:
        for step, _, metrics in prune_edges_after_units(ctx):
            print_pruned(config, f"edges step {step}", metrics)
            results.append(metrics)
    return results
