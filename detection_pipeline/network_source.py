"""Where the network to analyse comes from, and where its detection outputs go.

Default: the edge-pruned run named by the same options as the published shell lines (first value of
--pruning_gradient). Or --checkpoint FILE: one of our checkpoints (model.pt, a state_dict with masks) or a
network in the published .npz format. Outputs go beside the run, or into <result_path>/<checkpoint stem>/;
pictures mirror that path under --visualization_path.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from utils.errors import InputError
from utils.runs import CHECKPOINT_FILE, METRICS_FILE, RunDir, edges_after_units_dir, load_checkpoint


@dataclass
class Network:
    """A masked layered network as numpy arrays.

    weights[i], masks[i]: (arch[i+1], arch[i]); biases[i]: (arch[i+1],). out_dir: where modules.json and the
    GraphML go; picture: the PNG path; metrics: the run's metrics.json when there is one.
    """

    arch: list[int]
    weights: list[np.ndarray]
    masks: list[np.ndarray]
    biases: list[np.ndarray]
    source: str
    out_dir: Path
    picture: Path
    metrics: dict

    @property
    def density(self) -> float:
        return 100.0 * sum(float(m.sum()) for m in self.masks) / sum(m.size for m in self.masks)


def arrays_from_state_dict(state: dict, source: str) -> tuple[list, list, list]:
    """(weights, masks, biases) per layer from an MLP state_dict (keys layers.<i>.weight/weight_mask/bias)."""
    if not isinstance(state, dict):
        raise InputError(
            f"{source} is not a state_dict; pass a checkpoint written by sculpt or a published .npz"
        )
    weights, masks, biases = [], [], []
    i = 0
    while f"layers.{i}.weight" in state:
        weight = state[f"layers.{i}.weight"].detach().cpu().numpy()
        mask = state.get(f"layers.{i}.weight_mask")
        weights.append(weight)
        masks.append(np.ones_like(weight) if mask is None else mask.detach().cpu().numpy())
        bias = state.get(f"layers.{i}.bias")
        biases.append(np.zeros(weight.shape[0]) if bias is None else bias.detach().cpu().numpy())
        i += 1
    if not weights:
        raise InputError(
            f"{source} holds no MLP layers (expected keys layers.0.weight, ...); "
            "pass a checkpoint written by sculpt or a published .npz"
        )
    for a, b in zip(weights[:-1], weights[1:]):
        if a.shape[0] != b.shape[1]:
            raise InputError(
                f"{source}: layer shapes {a.shape} and {b.shape} do not chain; the file is damaged"
            )
    return weights, masks, biases


def arch_of(weights: list[np.ndarray]) -> list[int]:
    return [int(weights[0].shape[1])] + [int(w.shape[0]) for w in weights]


def _check_arch(config, arch: list[int], source: str) -> None:
    if "arch" in getattr(config, "explicit_options", []) and list(config.arch) != arch:
        raise InputError(
            f"{source} has arch {' '.join(map(str, arch))} but --arch is {' '.join(map(str, config.arch))}; "
            "fix --arch or leave it out to use the checkpoint's"
        )


def picture_path(config, out_dir: Path) -> Path:
    """<visualization_path>/<out_dir relative to result_path>/modules.png (or <out_dir name>/ outside it)."""
    result_root = Path(config.result_path).resolve()
    try:
        relative = out_dir.resolve().relative_to(result_root)
    except ValueError:
        relative = Path(out_dir.name)
    return Path(config.visualization_path) / relative / "modules.png"


def load_network(config) -> Network:
    """The network to analyse, per the config. Raises InputError with the fix for every bad input."""
    if config.checkpoint:
        return _from_checkpoint(config, Path(config.checkpoint))
    run = RunDir(edges_after_units_dir(config, config.pruning_gradient[0]))
    if not run.finished:
        raise InputError(
            f"no edge-pruned network at {run.path}; run --experiment prune with --prune_units 1 and then "
            "--prune_units 0 with the same options first, or pass --checkpoint FILE"
        )
    return network_from_run(config, run, run.path)


def network_from_run(config, run: RunDir, out_dir: Path) -> Network:
    """The finished run's network; its detection outputs go to `out_dir` (picture mirrored under
    --visualization_path)."""
    weights, masks, biases = arrays_from_state_dict(
        run.load_torch(CHECKPOINT_FILE), str(run.path / CHECKPOINT_FILE)
    )
    arch = arch_of(weights)
    _check_arch(config, arch, str(run.path))
    return Network(
        arch,
        weights,
        masks,
        biases,
        str(run.path),
        out_dir,
        picture_path(config, out_dir),
        run.load_json(METRICS_FILE),
    )


def _from_checkpoint(config, path: Path) -> Network:
    out_dir = Path(config.result_path) / path.stem
    if path.suffix == ".npz":
        from utils.network_files import load_published_npz

        published = load_published_npz(path)
        arch = list(published.arch)
        _check_arch(config, arch, str(path))
        weights, masks, biases = published.weights, published.masks, published.biases
        metrics = {}
    else:
        weights, masks, biases = arrays_from_state_dict(load_checkpoint(path), str(path))
        arch = arch_of(weights)
        _check_arch(config, arch, str(path))
        metrics_file = path.parent / METRICS_FILE
        metrics = json.loads(metrics_file.read_text()) if metrics_file.is_file() else {}
    return Network(arch, weights, masks, biases, str(path), out_dir, picture_path(config, out_dir), metrics)
