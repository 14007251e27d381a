"""Where the network to analyse comes from, and where its outputs go (DESIGN §10.1).

Default: the edge-pruned run named by the same options as the published shell lines (first value of
--pruning_gradient). Or --checkpoint FILE: our model.pt, a published-format .npz, or a graph file
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

from utils.config import ConfigError
from utils.fingerprint import file_digest, source_text
from utils.network import LayeredNetwork
from utils.runs import CHECKPOINT_FILE, METRICS_FILE, NETWORK_FILE, RunDir, edges_after_units_dir


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
    if _light_is_current(run):
        from utils.graph_io import read_graph

        network = read_graph(run.path / NETWORK_FILE)  # written from this model.pt: no torch import needed
    else:
        network = LayeredNetwork.from_state_dict(
            run.load_torch(CHECKPOINT_FILE),
            str(run.path / CHECKPOINT_FILE),
            activation=config.hidden_layer_activation,
        )
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
    from utils.network_files import load_network_file

    network = load_network_file(path)
    _check_arch(config, network.arch, str(path))
    metrics_file = path.parent / METRICS_FILE
    if path.suffix == ".pt" and metrics_file.is_file():
        try:
            network.metrics = own_metrics(network, json.loads(metrics_file.read_text()), metrics_file)
        except (OSError, json.JSONDecodeError):
            network.metrics = {}
    _cnn_layout(config, network, str(path))
    out_dir = checkpoint_out_dir(config, path)
    check_out_dir_source(out_dir, path)
    return Target(network, out_dir, picture_dir(config, out_dir), path)
