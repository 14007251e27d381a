"""Where the network to analyse comes from, and where its outputs go (docs/architecture.md, "The one
network type").

Default: the edge-pruned run named by the same options as the published shell lines (first value of
--pruning_gradient). Or --checkpoint FILE: our model.pt, a published-format .npz, or a graph file
(.graphml, .edgelist, graph .npz). Outputs go beside the run, or into
<result_path>/<checkpoint parent>_<checkpoint stem>/ for a file; pictures mirror that path under
--visualization_path.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from run.parser import ConfigError
from run.runs import CHECKPOINT_FILE, METRICS_FILE, NETWORK_FILE, RunDir, edges_after_units_dir
from utils.network import LayeredNetwork
from utils.network_files import network_from_state_dict


@dataclass
class Target:
    """A network to analyse with its output places: out_dir (modules.json, ...) and picture_dir (PNGs)."""

    network: LayeredNetwork
    out_dir: Path
    picture_dir: Path

    @property
    def picture(self) -> Path:
        return self.picture_dir / "modules.png"


def _check_arch(config, arch: list[int], source: str) -> None:
    if "arch" in getattr(config, "explicit_options", []) and list(config.arch) != arch:
        raise ConfigError(
            f"{source} has arch {' '.join(map(str, arch))} but --arch is {' '.join(map(str, config.arch))}; "
            "fix --arch or leave it out to use the checkpoint's"
        )


def _cnn_layout(config, network: LayeredNetwork, source: str) -> None:
    """Give a channel network (conv layers) its layer list and image shape for a forward pass: --cnn and
    --input_shape when given, else what the run's metrics.json recorded. Checks they fit the weights."""
    if all(kernel is None for kernel in network.kernels):
        return
    cnn = getattr(config, "cnn", None) or network.metrics.get("cnn")
    shape = getattr(config, "input_shape", None) or network.metrics.get("input_shape")
    if shape is not None:
        network.layout["input_shape"] = [int(s) for s in shape]
    if cnn:
        from utils.cnn_graph import check_layout_fits
        from utils.cnn_spec import parse_cnn, spec_text

        specs = parse_cnn(cnn)
        network.layout["cnn"] = spec_text(specs)
        if shape is not None:
            try:
                check_layout_fits(network, specs, network.layout["input_shape"])
            except ValueError as error:
                raise ConfigError(f"{source}: {error}") from None


def picture_dir(config, out_dir: Path) -> Path:
    """<visualization_path>/<out_dir relative to result_path>/ (or <out_dir name>/ outside it)."""
    result_root = Path(config.result_path).resolve()
    try:
        relative = out_dir.resolve().relative_to(result_root)
    except ValueError:
        relative = Path(out_dir.name)
    return Path(config.visualization_path) / relative


def checkpoint_out_dir(config, path: Path) -> Path:
    """Outputs for --checkpoint FILE: a folder named after the file's parent folder and stem, so a/model.pt
    and b/model.pt never share one."""
    parent = path.resolve().parent.name or "root"
    return Path(config.result_path) / f"{parent}_{path.stem}"


def _cell_level(config, state: dict, source: str) -> LayeredNetwork:
    """A cell network's checkpoint at the asked level: --level cells gives its cell graph (whose lesions run
    the real module); the unit level needs the traced unit graph of the module."""
    from models.cells import CellNetwork, cell_level_network

    if config.level != "cells":
        raise ConfigError(f"{source} is a cell network; analyse its cell graph with --level cells")
    return cell_level_network(CellNetwork.from_state_dict(state, source), source)


def _state_network(config, state: dict, source: str) -> LayeredNetwork:
    """The network in a torch state_dict: a cell network at --level, else our MLP/DAG/CNN conventions."""
    from utils.cell_graph import is_cell_state

    if is_cell_state(state):
        return _cell_level(config, state, source)
    if config.level == "cells":
        raise ConfigError(
            f"--level cells needs a cell network (trained with --structure FILE with cells); "
            f"{source} is not one"
        )
    return network_from_state_dict(state, source, activation=config.hidden_layer_activation)


def load_target(config) -> Target:
    """The network to analyse, per the config. Raises ConfigError / InputError with the fix.

    With --cnn_graph anchor a CNN's channel graph is cut to the anchor's conv-only part (graph analyses
    only: that part has no forward pass of its own)."""
    target = _load_target(config)
    if getattr(config, "cnn_graph", "full") == "anchor":
        from utils.cnn_graph import anchor_scope

        if "conv" not in target.network.kinds:
            raise ConfigError("--cnn_graph anchor needs a network with conv layers")
        try:
            target.network = anchor_scope(target.network)
        except ValueError as error:
            raise ConfigError(str(error)) from None
        # its own outputs, beside the full graph's
        target = Target(target.network, target.out_dir / "anchor_graph", target.picture_dir / "anchor_graph")
    return target


def _load_target(config) -> Target:
    if config.checkpoint:
        return target_from_file(config, Path(config.checkpoint))
    run = RunDir(edges_after_units_dir(config, config.pruning_gradient[0]))
    if not run.finished:
        raise ConfigError(
            f"no edge-pruned network at {run.path}; run --experiment prune with --prune_units 1 and then "
            "--prune_units 0 with the same options first, or pass --checkpoint FILE"
        )
    return target_from_run(config, run, run.path)


def target_from_run(config, run: RunDir, out_dir: Path) -> Target:
    """The finished run's network; its outputs go to `out_dir` (pictures mirrored)."""
    light = run.path / NETWORK_FILE
    if config.level == "cells":
        network = _state_network(config, run.load_torch(CHECKPOINT_FILE), str(run.path / CHECKPOINT_FILE))
        out_dir = out_dir / "cells"
    elif light.is_file() and light.stat().st_mtime >= (run.path / CHECKPOINT_FILE).stat().st_mtime:
        from utils.graph_io import read_graph

        network = read_graph(light)  # written with the checkpoint: no torch import needed
    else:
        network = _state_network(config, run.load_torch(CHECKPOINT_FILE), str(run.path / CHECKPOINT_FILE))
    network.source = str(run.path)
    network.metrics = run.load_json(METRICS_FILE)
    _cnn_layout(config, network, str(run.path / CHECKPOINT_FILE))
    _check_arch(config, network.arch, str(run.path))
    return Target(network, out_dir, picture_dir(config, out_dir))


def target_from_file(config, path: Path) -> Target:
    from utils.network_files import GRAPH_SUFFIXES, load_network_file, load_torch_file

    if path.suffix.lower() in (".npz", *GRAPH_SUFFIXES):
        if config.level == "cells":
            raise ConfigError(
                f"--level cells needs a cell network's checkpoint (model.pt); {path} is a graph file"
            )
        network = load_network_file(path)
    else:
        network = _state_network(config, load_torch_file(path), str(path))
    _check_arch(config, network.arch, str(path))
    metrics_file = path.parent / METRICS_FILE
    if path.suffix == ".pt" and metrics_file.is_file():
        try:
            network.metrics = json.loads(metrics_file.read_text())
        except (OSError, json.JSONDecodeError):
            network.metrics = {}
    _cnn_layout(config, network, str(path))
    out_dir = checkpoint_out_dir(config, path)
    if config.level == "cells":
        out_dir = out_dir / "cells"
    return Target(network, out_dir, picture_dir(config, out_dir))
