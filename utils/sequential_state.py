"""The state_dict of a plain `nn.Sequential` of Linear (and BatchNorm1d) layers, read by its keys.

Keys "<i>.weight", "<i>.bias" (optionally under one common prefix, e.g. "net.0.weight") for Linear layers
in index order; a BatchNorm1d right after a Linear ("<j>.weight" 1-d with "<j>.running_mean") is that
layer's batch norm. Activations have no keys, so the hidden activation is the one the caller names (ReLU by
default). Returns our MLP's keys (layers.<k>.*, norms.<k>.*) so the usual reader takes it from there.
"""

from __future__ import annotations

import re

from utils.errors import InputError

_KEY = re.compile(r"^(?P<prefix>(?:.*\.)?)(?P<index>\d+)\.(?P<name>[A-Za-z_]+)$")


def sequential_state(state: dict, source: str) -> dict | None:
    """Our MLP's keys for an nn.Sequential state_dict, or None when the keys are not of that form."""
    parsed = [(_KEY.match(k), k) for k in state]
    if not parsed or any(m is None for m, _ in parsed):
        return None
    if len({m["prefix"] for m, _ in parsed}) != 1:
        return None
    by_index: dict[int, dict] = {}
    for m, key in parsed:
        by_index.setdefault(int(m["index"]), {})[m["name"]] = state[key]
    out: dict = {}
    layer = -1
    for index in sorted(by_index):
        entry = by_index[index]
        weight = entry.get("weight")
        if weight is None:
            return None
        if weight.dim() == 2:
            layer += 1
            out[f"layers.{layer}.weight"] = weight
            if "bias" in entry:
                out[f"layers.{layer}.bias"] = entry["bias"]
        elif weight.dim() == 1 and "running_mean" in entry and layer >= 0:
            for name in ("weight", "bias", "running_mean", "running_var"):
                out[f"norms.{layer}.{name}"] = entry[name]
        else:
            raise InputError(
                f"{source}: module {index} of this nn.Sequential has a {weight.dim()}-d weight; its "
                "structure (pooling, flatten) does not follow from the keys: save the model with "
                "torch.export.save and pass the .pt2"
            )
    return out if layer >= 0 else None
