"""--experiment module_detection: cluster the pruned network's units into modules, write modules.json,
the GraphML and the layered PNG."""

from detection_pipeline.detect import detect_modules
from detection_pipeline.network_source import load_network
from detection_pipeline.outputs import write_detection


def run(config) -> dict:
    network = load_network(config)
    modules = detect_modules(network.masks, config, weights=network.weights)
    paths = write_detection(config, network, modules)
    if not config.quiet:
        kept = " ".join(str(a) for a in modules.condensed_arch)
        print(f"{modules.n_modules} modules (units kept per layer {kept}) -> {paths['modules']}")
        print(f"picture -> {paths['picture']}")
    return {"modules": modules, "paths": paths}
