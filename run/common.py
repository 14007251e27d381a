"""What every experiment needs before the science starts: seeds, device, the task on the device, the dense
network (trained once and reused), and progress bars that --quiet silences."""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from models.mlp import MLP
from run.parser import ConfigError
from run.reporting import progress_bar  # noqa: F401 - run.common.progress_bar, as before
from run.runs import RunDir, dense_dir
from utils.tasks import Task, load_task
from utils.training import TaskTensors, TrainingOptions, check_loss_fits, select_device


@dataclass
class Context:
    """The task (numpy), its tensors on `device`, the config, and the training options built from it."""

    config: object
    task: Task
    data: TaskTensors
    device: torch.device
    training: TrainingOptions


def prepare(config) -> Context:
    """Load the task (ConfigError on bad input) and put it on the device."""
    apply_structure(config)
    from run.options import task_options, training_options

    task = _load_task_for_structure(config) if config.structure else load_task(task_options(config))
    _check_cells(config, task)
    device = select_device(bool(config.gpu))
    data = TaskTensors.from_task(task, device)
    training = training_options(config)
    check_loss_fits(training, data)  # before any run folder is made
    if (
        config.graph
        and "modularity" in config.explicit_options
        and list(task.modularity) != config.modularity
    ):
        raise ConfigError(
            f"--modularity {' '.join(map(str, config.modularity))} disagrees with --graph {config.graph} "
            f"(modularity {' '.join(map(str, task.modularity))}); leave out --modularity (the graph names it)"
        )
    if config.task == "boolean" and not config.graph and not Path(config.dataset_path).is_dir():
        print(
            f"note: --dataset_path {config.dataset_path} does not exist; the task is built from the shipped "
            f"function graph of family {task.family}",
            file=sys.stderr,
        )
    if getattr(config, "gpu", 0) and device.type != "cuda":
        # A published command with --gpu 1 still runs (same results on the CPU), but not silently.
        print("warning: --gpu 1 but CUDA is not available here; running on the CPU", file=sys.stderr)
    choose_threads(config, device, task)
    return Context(config, task, data, device, training)


def _check_cells(config, task: Task) -> None:
    """A cell network (--structure with cells): its shapes fit the task and its size fits in memory, checked
    before any run folder is made or any weight allocated."""
    from utils.cell_graph import CellGraph, plan_cells
    from utils.limits import check_memory

    graph = getattr(config, "_structure", None)
    if not isinstance(graph, CellGraph):
        return
    plan = plan_cells(graph, task.image_shape or (task.n_inputs,), task.n_outputs)
    # weights, masks, gradients, two optimizer moments and a copy; three float32 copies of the activations
    need = 24 * plan.n_weights + 12 * config.batch_size * plan.floats_per_sample
    check_memory(
        need, f"--structure {config.structure} ({plan.n_weights} weights)", "use fewer or narrower cells"
    )


def _load_task_for_structure(config) -> Task:
    """load_task, with an arch that does not fit the task blamed on the --structure file it came from."""
    from run.options import task_options
    from utils.tasks import ArchMismatchError

    try:
        return load_task(task_options(config))
    except ArchMismatchError as error:
        task, arch = error.task, " ".join(map(str, error.arch))
        raise ConfigError(
            f"--structure {config.structure} has layer sizes {arch} ({error.arch[0]} inputs, "
            f"{error.arch[-1]} outputs), which does not fit task {task.name}: it has {task.n_inputs} "
            f"inputs and {task.n_outputs} outputs; give a structure whose first and last layers fit the task "
            "(a graph without layer attributes takes each node's longest path from an input as its layer)"
        ) from None


def cnn_work(config, input_shape) -> int:
    """Multiply-adds of one CNN forward for one image (conv and fc layers), to size the thread count."""
    from utils.cnn_spec import layer_shapes, parse_cnn

    specs = parse_cnn(config.cnn)
    previous, total = tuple(input_shape), 0
    for spec, shape in zip(specs, layer_shapes(specs, input_shape)):
        if spec.kind == "conv":
            h, w = (
                previous[1] + 2 * spec.padding - spec.kernel + 1,
                previous[2] + 2 * spec.padding - spec.kernel + 1,
            )
            total += spec.size * previous[0] * spec.kernel**2 * h * w
        else:
            total += spec.size * int(np.prod(previous))
        previous = shape
    return total


def choose_threads(config, device, task=None) -> None:
    """One CPU thread for small networks: their matrix products are far too small to split, and worker
    threads waiting on each other cost more than the work (badly so when jobs run side by side). Left
    alone when OMP_NUM_THREADS is set or the network is large."""
    import os

    if device.type != "cpu" or os.environ.get("OMP_NUM_THREADS"):
        return
    if getattr(config, "model", "MLP") == "CNN":
        largest = 2**22 if task is None else cnn_work(config, task.image_shape) // 8
    else:
        largest = max(a * b for a, b in zip(config.arch[:-1], config.arch[1:]))
    if largest * config.batch_size < 2**22:
        torch.set_num_threads(1)


def generator_for(seed: int) -> torch.Generator:
    """CPU generator for batch order and noise: same seed, same draws, on any device."""
    return torch.Generator().manual_seed(seed)


def epoch_progress(bar):
    def report(epoch, train_loss, val_accuracy):
        bar.update(1)
        bar.set_postfix(loss=f"{train_loss:.4f}", val_acc=f"{val_accuracy:.1f}")

    return report


def model_metrics(model: MLP) -> dict:
    metrics = {"density": model.density(), "units_kept": model.units_kept()}
    from models.cnn import CNN

    if isinstance(model, CNN):  # what a forward pass of its checkpoint needs
        metrics.update(cnn=model.spec, input_shape=list(model.input_shape))
    from models.cells import CellNetwork

    if isinstance(model, CellNetwork):
        metrics.update(cells_kept=model.cells_kept(), input_shape=list(model.input_shape))
    return metrics


def say_waiting(message: str) -> None:
    """One line on stderr when another process holds the run folder this one needs."""
    print(message, file=sys.stderr, flush=True)


def reused(metrics: dict, run_path) -> dict:
    """Mark metrics loaded from a finished run (the mark is not saved) so the result line can say so."""
    return dict(metrics, _reused=str(run_path))


def dense_run(ctx: Context, train_into) -> tuple[object, dict]:
    """The dense network of the options' run folder: loaded when the run is finished (and not --force),
    else a fresh model trained by `train_into(model, run) -> metrics` (which saves the run). The folder is
    locked meanwhile, so a second process asking for the same network waits and then reuses it. Returns
    (model on ctx.device, metrics; metrics["_reused"] is the run folder when it was loaded)."""
    config = ctx.config
    run = RunDir(dense_dir(config))
    model = fresh_model(config, ctx.device, ctx.task)
    with run.lock(on_wait=say_waiting):
        if run.finished and not config.force:
            model.load_state_dict(run.load_torch("model.pt"))
            return model, reused(run.load_json("metrics.json"), run.path)
        run.clean_stale_temps()
        return model, train_into(model, run)


def fresh_model(config, device, task: Task | None = None):
    """The MLP (--arch) or the CNN (--cnn, images of the task's shape) named by the config, seeded."""
    torch.manual_seed(config.seed)
    from utils.cell_graph import CellGraph

    if isinstance(getattr(config, "_structure", None), CellGraph):
        from models.cells import CellNetwork

        shape = task.image_shape or (task.n_inputs,)
        return CellNetwork(config._structure, shape, task.n_outputs, config.dropout).to(device)
    if getattr(config, "model", "MLP") == "CNN":
        from models.cnn import build_cnn

        return build_cnn(
            config.cnn, task.image_shape, task.n_outputs, bool(config.bn), config.dropout, device
        )
    return build_model(config, device)


def build_model(config, device) -> MLP:
    """The model the config names, on `device`: an MLP of --arch, or with --structure a DAG network whose
    connections are the structure graph's edges (see apply_structure)."""
    structure = getattr(config, "_structure", None)
    if structure is not None:
        from models.dag import DAGNetwork

        model = DAGNetwork.from_structure(
            structure, config.hidden_layer_activation, config.bn, config.dropout
        )
    else:
        model = MLP(config.arch, config.hidden_layer_activation, config.bn, config.dropout)
    return model.to(device)


def apply_structure(config) -> None:
    """With --structure FILE: read the layered DAG (GraphML, edge list or graph .npz), take its layer sizes
    as --arch (an explicit --arch that differs is an error) and keep it for build_model. No-op without."""
    if not getattr(config, "structure", None) or getattr(config, "_structure", None) is not None:
        return
    from utils.cell_graph import read_cell_graph
    from utils.graph_io import read_graph

    cells = read_cell_graph(config.structure)
    if cells is not None:  # a cell network: its widths come from the cells, not --arch
        if "arch" in getattr(config, "explicit_options", []):
            raise ConfigError(f"--structure {config.structure} is a cell graph; leave out --arch")
        config._structure = cells
        return
    structure = read_graph(config.structure)
    arch = list(structure.arch)
    if "arch" in getattr(config, "explicit_options", []) and list(config.arch) != arch:
        raise ConfigError(
            f"--structure {config.structure} has layer sizes {' '.join(map(str, arch))} but --arch is "
            f"{' '.join(map(str, config.arch))}; leave out --arch (the structure defines it)"
        )
    if structure.n_edges() == 0:
        raise ConfigError(f"--structure {config.structure} has no edges; give a graph with connections")
    config.arch = arch
    config._structure = structure
