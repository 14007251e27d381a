"""Where the network to analyse comes from, and where its outputs go (DESIGN §10.1).

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

from utils.config import ConfigError
from utils.network import LayeredNetwork
from utils.runs import CHECKPOINT_FILE, METRICS_FILE, NETWORK_FILE, RunDir, edges_after_units_dir


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


def load_target(config) -> Target:
    """The network to analyse, per the config. Raises ConfigError / InputError with the fix."""
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
    if light.is_file() and light.stat().st_mtime >= (run.path / CHECKPOINT_FILE).stat().st_mtime:
        from utils.graph_io import read_graph

        network = read_graph(light)  # written with the checkpoint: no torch import needed
    else:
        network = LayeredNetwork.from_state_dict(
            run.load_torch(CHECKPOINT_FILE),
            str(run.path / CHECKPOINT_FILE),
            activation=config.hidden_layer_activation,
        )
    network.source = str(run.path)
    network.metrics = run.load_json(METRICS_FILE)
    _check_arch(config, network.arch, str(run.path))
    return Target(network, out_dir, picture_dir(config, out_dir))


def target_from_file(config, path: Path) -> Target:
    from utils.network_files import load_network_file

    network = load_network_file(path)
    _check_arch(config, network.arch, str(path))
    metrics_file = path.parent / METRICS_FILE
    if path.suffix == ".pt" and metrics_file.is_file():
        try:
            network.metrics = json.loads(metrics_file.read_text())
        except (OSError, json.JSONDecodeError):
            network.metrics = {}
    out_dir = checkpoint_out_dir(config, path)
    return Target(network, out_dir, picture_dir(config, out_dir))
