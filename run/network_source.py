"""Where the network to analyse comes from, and where its outputs go (docs/architecture.md, "The one
network type").

Default: the edge-pruned run named by the same options as the published shell lines (first value of
--pruning_gradient). Or --checkpoint FILE: our model.pt (or a plain nn.Sequential state_dict), a module
saved with torch.export.save (.pt2, traced by models/trace.py), a published-format .npz, or a graph file
(.graphml, .edgelist, graph .npz). Outputs go beside the run, or into
<result_path>/<checkpoint parent>_<checkpoint stem>-<8 hex digits of the file's absolute path>/ for a file
(source.json there names the file; a folder written for another file is refused); pictures mirror that path
under --visualization_path. A run's network.npz is read instead of its model.pt only while it records the
sha256 of the model.pt that is there (a replaced model.pt is analysed, whatever its mtime).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

from run.parser import ConfigError
from run.runs import CHECKPOINT_FILE, METRICS_FILE, NETWORK_FILE, RunDir, edges_after_units_dir
from utils.fingerprint import file_digest, source_text
from utils.network import LayeredNetwork
from utils.network_files import network_from_state_dict


@dataclass
class Target:
    """A network to analyse with its output places: out_dir (modules.json, ...) and picture_dir (PNGs)."""

    network: LayeredNetwork
    out_dir: Path
    picture_dir: Path
    checkpoint: Path | None = None  # the --checkpoint file whose outputs out_dir holds (None: a run folder)

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


SOURCE_FILE = "source.json"


def checkpoint_out_dir(config, path: Path) -> Path:
    """Outputs for --checkpoint FILE: a folder named after the file's parent folder and stem, plus 8 hex
    digits of the sha256 of its absolute path (symlinks followed), so seed-0/dense/model.pt and
    seed-1/dense/model.pt (or two links named net.npz) never share one."""
    real = path.resolve()
    parent = real.parent.name or "root"
    tag = hashlib.sha256(str(real).encode()).hexdigest()[:8]
    return Path(config.result_path) / f"{parent}_{path.stem}-{tag}"


def check_out_dir_source(out_dir: Path, path: Path) -> None:
    """ConfigError when `out_dir` holds results written for another file than `path` (its source.json)."""
    try:
        recorded = json.loads((out_dir / SOURCE_FILE).read_text()).get("source")
    except (OSError, ValueError, AttributeError):
        return  # a new folder (or no readable record): nothing to contradict
    if recorded and recorded != source_text(path):
        raise ConfigError(
            f"output folder {out_dir} holds results for {recorded}, not for {source_text(path)}; "
            "choose another --result_path"
        )


def claim_out_dir(target: Target) -> None:
    """Record in the output folder of a --checkpoint file which file it belongs to (source.json), before
    the results are written; a no-op for a run folder's own outputs."""
    if target.checkpoint is None:
        return
    from utils.atomic_io import write_json_atomic
    from utils.fingerprint import network_record

    record = {**network_record(target.network), "source": source_text(target.checkpoint)}
    write_json_atomic(target.out_dir / SOURCE_FILE, record)


def _cell_level(config, state: dict, source: str) -> LayeredNetwork:
    """A cell network's checkpoint at the asked level: --level cells gives its cell graph (whose lesions run
    the real module); --level units its unit graph, traced from the module like any torch model."""
    import torch

    from models.cells import CellNetwork, cell_level_network, cell_state_fingerprint
    from models.trace import trace_module

    model = CellNetwork.from_state_dict(state, source).eval()
    if config.level == "cells":
        return cell_level_network(model, source)
    network = trace_module(model, torch.zeros(2, *model.input_shape), source).network
    # the same network whichever view: its fingerprint and the task's input shape are the cell model's
    network.layout["state_fingerprint"] = cell_state_fingerprint(state)
    network.layout["cell_input_shape"] = list(model.input_shape)
    return network


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
        target = Target(
            target.network,
            target.out_dir / "anchor_graph",
            target.picture_dir / "anchor_graph",
            target.checkpoint,
        )
    return target


def _load_target(config) -> Target:
    if config.checkpoint:
        check_restated(config)
        return target_from_file(config, Path(config.checkpoint))
    run = RunDir(edges_after_units_dir(config, config.pruning_gradient[0]))
    if not run.finished:
        raise ConfigError(
            f"no edge-pruned network at {run.path}; run --experiment prune with --prune_units 1 and then "
            "--prune_units 0 with the same options first, or pass --checkpoint FILE"
        )
    return target_from_run(config, run, run.path)


def own_metrics(network: LayeredNetwork, metrics, file: Path) -> dict:
    """`metrics` (a run's metrics.json) when it was written for `network`; {} with a warning line when it
    records another network's fingerprint (model.pt was replaced: its accuracy is not this network's)."""
    if not isinstance(metrics, dict):
        return {}
    recorded = metrics.get("fingerprint")
    if isinstance(recorded, str) and recorded != network.fingerprint:
        import sys

        print(
            f"warning: {file} was written for another network (fingerprint {recorded}, the model.pt beside "
            f"it is {network.fingerprint}); its accuracy and density are not used",
            file=sys.stderr,
        )
        return {}
    return metrics


def target_from_run(config, run: RunDir, out_dir: Path) -> Target:
    """The finished run's network; its outputs go to `out_dir` (pictures mirrored)."""
    if config.level == "cells":
        out_dir = out_dir / "cells"
    if config.level != "cells" and _light_is_current(run):
        from utils.graph_io import read_graph

        network = read_graph(run.path / NETWORK_FILE)  # written from this model.pt: no torch import needed
    else:
        network = _state_network(config, run.load_torch(CHECKPOINT_FILE), str(run.path / CHECKPOINT_FILE))
    network.source = str(run.path)
    network.metrics = own_metrics(network, run.load_json(METRICS_FILE), run.path / METRICS_FILE)
    _cnn_layout(config, network, str(run.path / CHECKPOINT_FILE))
    _check_arch(config, network.arch, str(run.path))
    return Target(network, out_dir, picture_dir(config, out_dir))


def _light_is_current(run: RunDir) -> bool:
    """Whether the run's network.npz was written from the model.pt that is there now (by content)."""
    from utils.graph_io import read_graph_meta

    light = run.path / NETWORK_FILE
    if not light.is_file():
        return False
    recorded = read_graph_meta(light).get("checkpoint_sha256")
    return bool(recorded) and recorded == file_digest(run.path / CHECKPOINT_FILE)


def target_from_file(config, path: Path) -> Target:
    from utils.network_files import GRAPH_SUFFIXES, load_network_file, load_torch_file

    if path.suffix.lower() == ".pt2":  # torch.export.save'd module: traced into its unit graph
        from models.trace import load_exported, trace_program

        if config.level == "cells":
            raise ConfigError(f"--level cells needs a cell network's checkpoint (model.pt); {path} is a .pt2")
        network = trace_program(load_exported(path), str(path)).network
    elif path.suffix.lower() in (".npz", *GRAPH_SUFFIXES):
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
            network.metrics = own_metrics(network, json.loads(metrics_file.read_text()), metrics_file)
        except (OSError, json.JSONDecodeError):
            network.metrics = {}
    _cnn_layout(config, network, str(path))
    out_dir = checkpoint_out_dir(config, path)
    if config.level == "cells":
        out_dir = out_dir / "cells"
    check_out_dir_source(out_dir, path)
    return Target(network, out_dir, picture_dir(config, out_dir), path)


# ------------------------------------------------------------------------------------ the run's own task
def task_config(config):
    """The options to build the task a network is evaluated on: with --checkpoint, the task of the run it
    comes from (config.json beside the file, or in the run folder), an explicit option that contradicts
    it being a ConfigError; without a config.json the task must be named (--task/--modularity/--graph),
    never the default silently. Without --checkpoint the options name the run, so its task too."""
    import argparse
    import os

    from run.option_rules import TASK
    from run.saved_config import check_saved_config
    from utils.files import read_json

    if not config.checkpoint:
        return config
    path = Path(config.checkpoint)
    saved_file = (path if path.is_dir() else path.parent) / "config.json"
    explicit = set(config.explicit_options)
    if not saved_file.is_file():
        if not explicit & {"task", "modularity", "graph"}:
            raise ConfigError(
                f"{path} has no config.json beside it to say which task it was trained on; name the task "
                "with --task and --modularity (or --graph), e.g. --modularity 4 1 4, or give your own data "
                "with --input_batch FILE.npz"
            )
        return config
    saved = check_saved_config(read_json(saved_file, "run config"), str(saved_file))
    merged = argparse.Namespace(**vars(config))
    for name in sorted(TASK & set(saved)):
        mine, theirs = getattr(config, name), saved[name]
        if name.endswith("_path") or name == "graph":
            same = (mine is None) == (theirs is None) and (
                mine is None or os.path.normpath(mine) == os.path.normpath(theirs)
            )
        else:
            same = mine == theirs
        if name in explicit and not same:
            shown = " ".join(map(str, theirs)) if isinstance(theirs, list) else theirs
            given = " ".join(map(str, mine)) if isinstance(mine, list) else mine
            raise ConfigError(
                f"--{name} {given} contradicts the task of {path}: {saved_file} says {name} {shown}; "
                f"leave --{name} out to use the run's task"
            )
        setattr(merged, name, theirs)
    return merged


def check_restated(config) -> None:
    """With --checkpoint: every run-naming option given on the command line that the analysis does not use
    must restate the checkpoint's run (the config.json beside it); otherwise ConfigError naming it."""
    from run.option_rules import restated_options
    from run.saved_config import check_saved_config
    from utils.files import read_json

    given = [name for name in config.explicit_options if name in restated_options(config)]
    if not given:
        return
    path = Path(config.checkpoint)
    saved_file = (path if path.is_dir() else path.parent) / "config.json"
    saved = {}
    if saved_file.is_file():
        saved = check_saved_config(read_json(saved_file, "run config"), str(saved_file))
    for name in given:
        if name not in saved:
            raise ConfigError(
                f"--{name} is not used by --experiment {config.experiment} (--checkpoint {path} is the "
                "network, so options naming a run are not read); leave it out"
            )
        if getattr(config, name) != saved[name]:
            raise ConfigError(
                f"--{name} {getattr(config, name)} contradicts the run of {path}: {saved_file} says "
                f"{saved[name]}; leave --{name} out"
            )
