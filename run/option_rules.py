"""Which options each experiment uses, and the checks of option values that argparse cannot make: ranges,
counts and sizes. Part of the command-line parser (standard library only); `check_options` runs once after
parsing, before anything is read or allocated.

No option is ignored: an option given on the command line that the experiment (with its --method,
--checkpoint, --prune_units) does not use is an error naming it. `used_options` is the one table of that:
option families (sets of option names) and, per experiment, the families it reads. Options that name a run
folder count as used wherever the experiment reads that run by its options (no --checkpoint); with
--checkpoint, options the checkpoint fixes (--arch, ...) are checked against it, not used.
"""

from __future__ import annotations

from utils.limits import (
    COUNT_LIMITS,
    SEED_LIMIT,
    TooLargeError,
    check_arch,
    check_count,
    cpu_count,
    memory_budget,
)

# ---------------------------------------------------------------------------------------- option families
# accepted by every experiment: how to run, not what (the published CLI's --gpu, --workers and --hp too),
# and the two output roots, so that one pair of output folders can be given to every command of a study
RUNNING = {"experiment", "dry_run", "quiet", "gpu", "workers", "hp", "result_path", "visualization_path"}
TASK = {
    "task", "modularity", "dataset_path", "dataset_noise", "mnist_path", "fashion_mnist_path",
    "kmnist_path", "image_norm", "graph", "table_repeats", "images_per_pair", "mnist_source",
}  # fmt: skip
MODEL = {"model", "cnn", "input_shape", "arch", "structure", "hidden_layer_activation", "bn", "dropout"}
TRAINING = {
    "optimizer", "loss", "batch_size", "epochs", "lr", "weight_decay", "l1", "clusterability_reg", "reg_k",
    "normalize_weights_every", "reg_every", "scheduler", "gamma", "best_epoch", "gradual_pruning",
    "target_sparsity", "prune_epochs", "prune_every", "prune_scope", "seed", "result_path", "force",
    "recipe",
}  # fmt: skip
SEARCH = {"prune_acc_threshold", "retrain_include_start", "final_step", "step_from", "prune_perc"}
UNIT_PRUNING = SEARCH | {
    "unit_pruning_metric", "unit_pruning_metric_normalized", "unit_pruning_norm", "unit_pruning_scale",
    "unit_pruning_schedule", "unit_pruning_gradient", "unit_pruning_iterations",
}  # fmt: skip
EDGE_PRUNING = SEARCH | {"pruning_schedule", "pruning_gradient", "pruning_iterations", "edge_bias_mask"}
# the options that name the edge-pruned run an analysis reads when no --checkpoint is given
EDGE_RUN = TASK | MODEL | TRAINING | UNIT_PRUNING | EDGE_PRUNING | {"which_unit_pruning_gradient"}
# with --checkpoint: what the network file fixes; given anyway, they are checked against it
FIXED_BY_CHECKPOINT = {"arch", "model", "cnn", "input_shape", "hidden_layer_activation"}
SOURCE = {"checkpoint", "cnn_graph", "result_path", "visualization_path"}
SCULPT_DETECTION = {
    "feature_direction", "feature_weighted", "feature_step_size", "clusterability_step_size",
    "clusterability_criterion", "clustering_linkage", "clustering_distance_measure", "stopping_criteria",
    "cluster_merging_threshold", "mm_threshold",
}  # fmt: skip
SPECTRAL = {"n_clusters", "normalize_weights", "graph_prune", "seed"}
NEWMAN = {
    "association",
    "bisection",
    "mc_steps",
    "mc_restarts",
    "target_entropy",
    "input_batch",
    "loss",
    "seed",
}
LESION = {"partition", "num_shuffles", "double", "num_shuffles_double", "double_pairs", "seed"}
METHODS = {"sculpt": SCULPT_DETECTION, "spectral": SPECTRAL, "newman": NEWMAN}

# options that take several values in the parser but one value in these experiments
ONE_VALUE = {
    "n_clusters": "takes one K (several: --experiment spectral_sweep)",
    "pruning_gradient": "reads one edge-pruned run",
}


# task options that only some tasks read (the rest of TASK applies to every task)
TASK_ONLY = {
    "dataset_noise": ("boolean",),
    "table_repeats": ("boolean",),
    "graph": ("boolean",),
    "images_per_pair": ("digits", "mnist"),
    "mnist_path": ("mnist", "mnist_10way"),
    "mnist_source": ("mnist", "mnist_10way"),
    "fashion_mnist_path": ("fashion_mnist_10way",),
    "kmnist_path": ("kmnist_10way",),
    "image_norm": ("digits", "mnist", "digits_10way", "mnist_10way", "fashion_mnist_10way", "kmnist_10way"),
}
# the 10-way tasks fix their structure (inputs, classes); a --modularity that restates it is fine
TEN_WAY_MODULARITY = {
    "digits_10way": [64, 10],
    "mnist_10way": [784, 10],
    "fashion_mnist_10way": [784, 10],
    "kmnist_10way": [784, 10],
}
MODEL_ONLY = {"cnn": "CNN", "input_shape": "CNN", "structure": "MLP", "arch": "MLP"}


def _not_applicable(config, task_known: bool, model_known: bool) -> dict[str, str]:
    """{option: why} for options of the task or model family that this --task / --model does not read
    (only where the task / model is the options', not a checkpoint's)."""
    out = {}
    if task_known:
        for name, tasks in TASK_ONLY.items():
            if config.task not in tasks:
                out[name] = f"--task {config.task} does not read it"
        fixed = TEN_WAY_MODULARITY.get(config.task)
        if fixed is not None and list(config.modularity) != fixed:
            out["modularity"] = f"--task {config.task} is always {' '.join(map(str, fixed))}"
    if model_known:
        for name, model in MODEL_ONLY.items():
            if config.model != model:
                out[name] = f"--model {config.model} does not read it"
    return out


def _network(config) -> set[str]:
    """What an analysis of a network reads: the run its options name, or --checkpoint FILE."""
    return SOURCE | (FIXED_BY_CHECKPOINT if config.checkpoint else EDGE_RUN)


def used_options(config) -> set[str]:
    """The options --experiment uses, given its --method, --checkpoint, --prune_units and --input_batch."""
    experiment = config.experiment
    if experiment == "train":
        used = TASK | MODEL | TRAINING | {"checkpoint_every"}
    elif experiment == "prune":
        # --checkpoint FILE: the phase starts from that network (a dense one, or a unit-pruned one)
        used = TASK | MODEL | TRAINING | UNIT_PRUNING | {"checkpoint_every", "prune_units", "checkpoint"}
        if not config.prune_units:
            used |= EDGE_PRUNING | {"which_unit_pruning_gradient"}
    elif experiment == "prune_edges":
        used = TASK | MODEL | TRAINING | EDGE_PRUNING | {"checkpoint_every"}
    elif experiment == "prune_cells":
        used = TASK | MODEL | TRAINING | {"prune_cells"}
    elif experiment == "sculpt":
        used = TASK | MODEL | TRAINING | UNIT_PRUNING | EDGE_PRUNING | SCULPT_DETECTION
        used |= {"visualization_path", "seeds", "batch_members"}
    elif experiment == "module_detection":
        used = _network(config) | {"method"} | METHODS.get(config.method, set())
        if config.method == "newman" and not config.input_batch:
            used |= TASK  # the task's test split is the input batch
    elif experiment == "lesion":
        used = _network(config) | LESION | TASK | {"input_batch"}
    elif experiment == "export_graph":
        used = (_network(config) - {"visualization_path"}) | {"graph_format", "output", "partition"}
    elif experiment == "clusterability":
        used = (
            _network(config)
            | SPECTRAL
            | {"partition", "num_shuffles", "shuffle_method", "shuffle_solver", "force"}
        )
    elif experiment == "spectral_sweep":
        used = _network(config) | SPECTRAL | {"stability_seeds"}
    elif experiment == "associations":
        used = _network(config) | NEWMAN | TASK | {"n_shuffle", "out"}
    elif experiment == "compare_partitions":
        used = {"partitions", "n_shuffle", "out", "seed", "result_path"}
    elif experiment == "associations_summary":
        used = {"result_path"}
    elif experiment == "summarize":
        used = {"result_path", "summary_path", "visualization_path"}
    elif experiment == "sweep":
        used = {"jobs_file", "jobs", "backend", "ray_address", "log_dir", "result_path"}
    elif experiment == "generate_task":
        used = {"task", "modularity", "graph", "dataset_path"}
    else:
        used = set()
    if experiment in ("module_detection", "lesion", "export_graph", "clusterability"):
        used |= {"level"}  # a cell network: its units, or its cell graph
    if experiment in ("clusterability", "spectral_sweep") and config.method == "spectral":
        used |= {"method"}  # restates what these experiments do: spectral clustering
    return used | RUNNING


def restated_options(config) -> set[str]:
    """With --checkpoint, the options naming a run that may restate the checkpoint's own run: they are not
    used, but equal to the config.json beside the checkpoint they are accepted (a command line written for
    the run, with --checkpoint added); run/network_source.py checks them against that file."""
    if not config.checkpoint or "checkpoint" not in used_options(config):
        return set()
    return EDGE_RUN - used_options(config)


def _why_not(config, name: str) -> str:
    """A hint for an unused option: what would use it."""
    if config.checkpoint and name in EDGE_RUN:
        return f"--checkpoint {config.checkpoint} is the network, so options naming a run are not read"
    if config.experiment == "module_detection" and name in set().union(*METHODS.values()):
        users = [m for m, names in METHODS.items() if name in names]
        return f"--method {config.method} does not take it (--method {' or '.join(users)} does)"
    if config.experiment == "prune" and config.prune_units and name in EDGE_PRUNING:
        return "--prune_units 1 prunes units only"
    users = _experiments_using(config, name)
    return f"used by --experiment {', '.join(users)}" if users else "it is accepted for other experiments"


def _experiments_using(config, name: str) -> list[str]:
    """The experiments that use option `name` (with the other options as given)."""
    import argparse

    from run.option_types import EXPERIMENTS

    probe = argparse.Namespace(**vars(config))
    users = []
    for experiment in EXPERIMENTS:
        probe.experiment = experiment
        if name in used_options(probe):
            users.append(experiment)
    return users


def check_used(config, explicit: list[str]) -> list[str]:
    """Error messages for the explicitly given options the experiment does not use (empty: all used)."""
    used = used_options(config) | restated_options(config)  # restated: checked against the run's config
    unused = [name for name in explicit if name not in used and name != "explicit_options"]
    problems = [
        f"--{name} is not used by --experiment {config.experiment} ({_why_not(config, name)}); leave it out"
        for name in unused
    ]
    # with --checkpoint the task and model may be the checkpoint's (its config.json), unknown here
    task_known = not config.checkpoint or "task" in explicit
    inapplicable = _not_applicable(config, task_known, model_known=not config.checkpoint)
    if inapplicable:
        problems += [
            f"--{name} is not used here ({inapplicable[name]}); leave it out"
            for name in explicit
            if name in inapplicable and name in used
        ]
    return problems


def check_ranges(config) -> list[str]:
    """Error messages for values out of range: --gpu, seeds, list indices, one value where one is used."""
    problems = []
    if config.gpu not in (0, 1):
        problems.append(f"--gpu {config.gpu} is not 0 (CPU) or 1 (CUDA); give --gpu 0 or --gpu 1")
    for name, values in (("seed", [config.seed]), ("seeds", config.seeds or [])):
        bad = [s for s in values if not 0 <= s <= SEED_LIMIT]
        if bad:
            problems.append(f"--{name} {bad[0]} is out of range; seeds are 0..{SEED_LIMIT}")
    steps = config.unit_pruning_gradient or [None]
    if not 0 <= config.which_unit_pruning_gradient < len(steps):
        given = " ".join(str(s) for s in steps) if config.unit_pruning_gradient else "none"
        problems.append(
            f"--which_unit_pruning_gradient {config.which_unit_pruning_gradient} is past the list of "
            f"--unit_pruning_gradient ({given}); give an index 0..{len(steps) - 1}"
        )
    reads_run = config.experiment in ("module_detection", "lesion", "export_graph", "clusterability",
                                      "spectral_sweep", "associations")  # fmt: skip
    multi = {"n_clusters": config.experiment != "spectral_sweep", "pruning_gradient": reads_run}
    for name, single in multi.items():
        values = getattr(config, name)
        if single and len(values) > 1 and name in config.explicit_options:
            problems.append(
                f"--{name} {' '.join(map(str, values))}: --experiment {config.experiment} {ONE_VALUE[name]}; "
                "give one value"
            )
    problems += _float32_ranges(config)
    if config.jobs is not None and config.jobs <= 0:
        problems.append(f"--jobs must be positive, got {config.jobs}")
    if config.jobs is not None and config.backend == "local" and config.jobs > 2 * cpu_count():
        problems.append(
            f"--jobs {config.jobs} starts more processes than twice the {cpu_count()} CPUs here; "
            f"give at most --jobs {2 * cpu_count()}"
        )
    if config.workers < 0:
        problems.append(f"--workers must be 0 or positive, got {config.workers}")
    if config.batch_members < 0:
        problems.append(f"--batch_members must be 0 (all) or positive, got {config.batch_members}")
    return problems


FLOAT32_MAX = 3.4e38


def _float32_ranges(config) -> list[str]:
    """Training runs in float32: a value, or the learning rate after --gamma's growth over --epochs, beyond
    float32 would turn into inf mid-run; refused before it starts."""
    import math

    problems = []
    for name in ("lr", "weight_decay", "l1", "clusterability_reg", "gamma"):
        value = getattr(config, name)
        if abs(value) > FLOAT32_MAX:
            problems.append(f"--{name} {value} is beyond float32 (at most {FLOAT32_MAX:g})")
    if config.lr > 0 and config.gamma > 1 and config.scheduler == "exp":
        if math.log(config.lr) + config.epochs * math.log(config.gamma) > math.log(FLOAT32_MAX):
            problems.append(
                f"--gamma {config.gamma} grows --lr {config.lr} past float32 within --epochs "
                f"{config.epochs}; use a --gamma nearer 1"
            )
    return problems


def check_sizes(config) -> None:
    """TooLargeError (one line naming the option and its limit) for counts past their ceilings and for
    sizes whose memory is known from the options alone; files are checked where they are read."""
    for name in COUNT_LIMITS:
        value = getattr(config, name, None)
        if name == "seeds":
            value = len(value) if value else None
        if isinstance(value, list):
            value = max(value)
        if value is not None:
            check_count(name, value)
    if config.model == "MLP" and not config.structure:
        # training holds weight, mask, gradient, two Adam moments and a best copy: ~24 bytes a weight
        check_arch(config.arch, "--arch", "use smaller widths", bytes_per_weight=24)
        check_width_batch(config.arch, config.batch_size)
    for name in ("unit_pruning_gradient", "pruning_gradient", "shuffle_method", "partitions"):
        values = getattr(config, name) or []
        if len(values) > 1000:
            raise TooLargeError(f"--{name} has {len(values)} values (at most 1000)")
    if (
        config.experiment in ("sculpt", "prune", "prune_edges")
        and config.model == "MLP"
        and not config.structure
    ):
        check_search_grid(config)
    if config.cnn:
        check_cnn_size(config.cnn, config.input_shape or TASK_IMAGE_SHAPE.get(config.task), config.batch_size)
    if config.task == "boolean" and not config.graph and config.experiment != "compare_partitions":
        inputs = config.modularity[0]
        from utils.limits import MAX_INPUTS

        if inputs > MAX_INPUTS:
            raise TooLargeError(
                f"--modularity {' '.join(map(str, config.modularity))}: a boolean task of {inputs} inputs "
                f"has 2^{inputs} truth-table rows; use at most {MAX_INPUTS} inputs"
            )


TASK_IMAGE_SHAPE = {
    "digits_10way": (1, 8, 8), "digits": (1, 8, 16), "mnist": (1, 28, 56), "mnist_10way": (1, 28, 28),
    "fashion_mnist_10way": (1, 28, 28), "kmnist_10way": (1, 28, 28),
}  # fmt: skip


def check_cnn_size(cnn: str, input_shape, batch_size: int) -> None:
    """Weights (about 24 bytes each while training) and one batch's activations (forward and backward) of
    the --cnn layers on images of `input_shape`, checked against the memory budget before building it."""
    from utils.cnn_spec import parse_cnn

    if input_shape is None:
        return
    previous = tuple(int(s) for s in input_shape)
    if len(previous) != 3 or min(previous) <= 0:
        return  # validate_cnn names the shape
    weights = activations = 0
    for layer in parse_cnn(cnn):
        if layer.kind == "conv":
            h = max(previous[1] + 2 * layer.padding - layer.kernel + 1, 1)
            w = max(previous[2] + 2 * layer.padding - layer.kernel + 1, 1)
            weights += layer.size * previous[0] * layer.kernel**2
            activations += layer.size * h * w
            previous = (layer.size, max(h // layer.pool, 1), max(w // layer.pool, 1))
        else:
            inputs = previous[0] * previous[1] * previous[2] if len(previous) == 3 else previous[0]
            weights += layer.size * inputs
            activations += layer.size
            previous = (layer.size,)
    need = 24 * weights + 3 * 4 * batch_size * (
        activations + input_shape[0] * input_shape[1] * input_shape[2]
    )
    if need > memory_budget():
        from utils.limits import human

        raise TooLargeError(
            f"--cnn {cnn!r} on images of {' x '.join(map(str, input_shape))} (--input_shape) with "
            f"--batch_size {batch_size} needs {human(need)}, more than the {human(memory_budget())} this "
            "machine allows; use fewer channels or units"
        )


def check_search_grid(config) -> None:
    """Searches trained side by side as one batched model (sculpt's grid: seeds x unit steps x edge steps,
    or the steps of one prune), each holding its own weights: their memory, before the batch is built."""
    from utils.limits import dense_parameters, human

    units = len(config.unit_pruning_gradient or [None])
    edges = len(config.pruning_gradient)
    members = {"sculpt": len(config.seeds or [0]) * units * edges, "prune": max(units, edges)}.get(
        config.experiment, edges
    )
    if config.batch_members:
        members = min(members, config.batch_members)
    need = members * dense_parameters(config.arch) * 24
    if need > memory_budget():
        raise TooLargeError(
            f"{members} searches side by side (--seeds x --unit_pruning_gradient x --pruning_gradient) of "
            f"arch {' '.join(map(str, config.arch))} need {human(need)}, more than the "
            f"{human(memory_budget())} this machine allows; lower --batch_members or the number of steps"
        )


def check_width_batch(arch, batch_size: int) -> None:
    """Activations of one batch through the widest layer (forward and backward, float32)."""
    need = 4 * 4 * batch_size * max(arch) * len(arch)
    if need > memory_budget():
        raise TooLargeError(
            f"--batch_size {batch_size} with widths up to {max(arch)} needs more memory for one batch than "
            "this machine allows; lower --batch_size"
        )


def check_options(config) -> list[str]:
    """All rule violations of the parsed options, as one-line messages (the parser raises the first)."""
    check_sizes(config)
    return check_ranges(config) + check_used(config, config.explicit_options)
