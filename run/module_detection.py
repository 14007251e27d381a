"""--experiment module_detection: find modules with --method (default sculpt, the Neural Sculpting
detection), write modules.json, the GraphML and the layered PNG."""

from detection_pipeline.methods import find_modules
from run.detection_outputs import write_detection
from run.network_source import claim_out_dir, load_target
from run.options import method_options


def run(config) -> dict:
    method = getattr(config, "method", "sculpt")
    options, options_dict, line = method_options(config, method)
    target = load_target(config)
    data = None
    if getattr(options, "needs_data", False):
        from run.lesion import load_test_task

        data = load_test_task(config, target.network)  # checked against the network's own layers
    partition = find_modules(method, target.network, data, options)
    claim_out_dir(target)
    paths = write_detection(config, target, partition, options_dict, line)
    kept = partition.diagnostics.get("condensed_arch")
    kept_text = f" (units kept per layer {' '.join(map(str, kept))})" if kept else ""
    if "ncut" in partition.diagnostics:
        kept_text += f", n-cut {partition.diagnostics['ncut']:.4f}"
    layers = partition.diagnostics.get("layers")
    q_text = ""
    if isinstance(layers, list) and layers and "Q" in layers[0]:
        q_text = " (Q per hidden layer " + " ".join(f"{entry['Q']:.3f}" for entry in layers) + ")"
    print(f"{method}: {partition.n_modules} modules{kept_text}{q_text} -> {paths['modules']}")
    if not config.quiet:
        print(f"picture -> {paths['picture']}")
    return {"partition": partition, "paths": paths}
