"""Unit names "<module>:<index>" beside the layer/unit numbering of output files.

A traced module (models/trace.py) names every unit after the qualified name of the linear or convolution
whose weights produce it (as in `model.named_modules()`, e.g. `layer1.0.conv2:5`). Other networks get the
names of our own modules: inputs "input:<i>", then "layers.<l-1>:<u>" for the units layer l's weights
produce (our MLP, CNN and DAG networks name those modules so).
"""

from __future__ import annotations


def unit_names(network) -> list[list[str]]:
    """Per layer, the (arch[l],) names of its units."""
    traced = network.layout.get("unit_names")
    if traced is not None and [len(names) for names in traced] == list(network.arch):
        return [list(names) for names in traced]
    names = [[f"input:{u}" for u in range(network.arch[0])]]
    names += [[f"layers.{l - 1}:{u}" for u in range(width)] for l, width in enumerate(network.arch) if l]
    return names


def flat_unit_names(network) -> list[str]:
    """(N,) names in the global unit order (inputs first), as a partition's labels are."""
    return [name for layer in unit_names(network) for name in layer]
