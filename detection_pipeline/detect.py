"""End-to-end module detection (Neural Sculpting): condense, features, per-layer clustering and tests,
merge.

    partition = detect_modules(masks, options, weights=None)

masks[i] is the (arch[i+1], arch[i]) 0/1 mask of layer i (torch Linear layout); `options` is a
DetectionOptions (None: the published defaults). The result is the one partition type,
detection_pipeline.partition.Partition.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import numpy as np

from detection_pipeline import clustering
from detection_pipeline.features import reachability
from detection_pipeline.graph import LayeredGraph, NoPathError
from detection_pipeline.merge import merge_layers, merge_layers_dag
from detection_pipeline.partition import Partition, relabel_first_appearance
from detection_pipeline.separability import TestOutcome, compare_expected
from utils.errors import InputError

__all__ = ["DetectionOptions", "LayerResult", "NoPathError", "detect_modules"]


@dataclass
class DetectionOptions:
    """The detection options with the published CLI defaults (see run/parser.py)."""

    feature_direction: str = "outgoing"
    feature_weighted: bool = False
    feature_step_size: int = 2
    clusterability_step_size: int = 2
    clustering_linkage: str = "average"
    clustering_distance_measure: str = "cosine"
    stopping_criteria: str = "modularity-metric"
    mm_threshold: float = 0.2
    cluster_merging_threshold: float = 0.9
    clusterability_criterion: str = "compare_expected"

    @classmethod
    def from_any(cls, options: DetectionOptions | None) -> DetectionOptions:
        """A checked copy of `options` (None: the published defaults), the published spelling
        "incomming" read as "incoming". InputError for values detection cannot use."""
        out = cls() if options is None else dataclasses.replace(options)
        out.feature_direction = str(out.feature_direction).lower()
        if out.feature_direction == "incomming":  # the published spelling
            out.feature_direction = "incoming"
        out.validate()
        return out

    def validate(self) -> None:
        """Raise InputError for values detection cannot use."""
        if self.feature_direction not in ("outgoing", "incoming", "bidirectional"):
            raise InputError(
                f"--feature_direction {self.feature_direction!r} is unknown; "
                "choose from outgoing, incoming (or incomming), bidirectional"
            )
        clustering.check_options(
            self.clustering_linkage, self.clustering_distance_measure, self.stopping_criteria
        )
        if self.clusterability_criterion != "compare_expected":
            raise InputError(
                f"--clusterability_criterion {self.clusterability_criterion!r} is unknown; "
                "use compare_expected"
            )
        for name in ("feature_step_size", "clusterability_step_size"):
            if int(getattr(self, name)) <= 0:
                raise InputError(f"--{name} must be a positive integer, got {getattr(self, name)}")


@dataclass
class LayerResult:
    """Clustering of one non-output layer (over its alive units).

    k: clusters used; metric_k: the stopping criterion's pick (None when the layer has < 3 units);
    metric_score: its score; scores: score per k in 2..n-1 (lower is better; ch/silhouette negated);
    tests: separability outcome when the tests were consulted; labels: (n_alive,) cluster per alive unit.
    """

    layer: int
    n_units: int
    k: int
    metric_k: int | None
    metric_score: float
    scores: np.ndarray
    tests: TestOutcome | None
    labels: np.ndarray

    def to_json(self) -> dict:
        return {
            "layer": self.layer,
            "n_units": self.n_units,
            "k": self.k,
            "metric_k": self.metric_k,
            "metric_score": self.metric_score if math.isfinite(self.metric_score) else None,
            "scores": {str(k + 2): float(s) for k, s in enumerate(self.scores)},
            "tests": None if self.tests is None else self.tests.to_json(),
            "labels": [int(x) for x in self.labels],
        }


def _cluster_layer(graph: LayeredGraph, layer: int, opts: DetectionOptions) -> LayerResult:
    """Features, k by the stopping criterion, the separability tests when they apply, final labels."""
    metric, linkage = opts.clustering_distance_measure, opts.clustering_linkage
    feats = reachability(
        graph, layer, int(opts.feature_step_size), opts.feature_direction, bool(opts.feature_weighted)
    )
    if metric in ("cosine", "jaccard") or not opts.feature_weighted:
        feats.matrix = feats.binary()
    x = feats.matrix
    n = x.shape[0]
    if n == 1:
        return LayerResult(layer, 1, 1, None, float("inf"), np.zeros(0), None, np.zeros(1, dtype=np.int64))

    distances = None
    if not (linkage == "single" and metric in ("euclidean", "jaccard")):
        distances = clustering.condensed_distances(x, metric)
    tree = clustering.linkage_tree(x, metric, linkage, distances)
    if distances is None:
        distances = clustering.condensed_distances(x, metric)
    scores = clustering.criterion_scores(opts.stopping_criteria, x, tree, distances)
    choice = clustering.best_k(scores)

    k = choice.k if choice.k is not None else n
    consult = choice.k is None or choice.k in (2, n - 1)
    if opts.stopping_criteria == "modularity-metric":
        # mm_threshold is on the modularity metric's scale; other criteria only consult at the edges
        consult = consult or choice.score > -float(opts.mm_threshold)
    tests = None
    if consult:
        restricted = feats.restricted(int(opts.clusterability_step_size))
        same = restricted.matrix.shape[1] == x.shape[1]
        tests = compare_expected(
            feats.binary(),
            tree,
            restricted.matrix,
            restricted.matrix.shape[1],
            metric,
            linkage,
            restricted_tree=tree if same else None,
        )
        if tests.k is not None:
            k = tests.k
    labels = clustering.cut(tree, k)
    return LayerResult(layer, n, int(k), choice.k, choice.score, scores, tests, labels)


def detect_modules(masks, options, weights=None, skips=None) -> Partition:
    """Detect modules in a masked layered network: a Partition (method "sculpt", ids 0..M-1 in order of
    first appearance, -1 for dropped units) whose diagnostics hold condensed_arch (alive units per layer)
    and layers (the per-layer clustering records, LayerResult.to_json).

    masks: list of 0/1 arrays, masks[i] of shape (arch[i+1], arch[i]); weights: same shapes, used only when
    options.feature_weighted; skips: utils.network.Block list of edges that skip layers (a DAG network), or
    None. Raises NoPathError (an InputError) when no input reaches an output, and InputError for bad shapes
    or options.
    """
    opts = DetectionOptions.from_any(options)
    graph = LayeredGraph.from_masks(masks, weights if opts.feature_weighted else None, skips)
    if opts.feature_weighted and weights is None:
        raise InputError("weighted features need the network's weights; pass weights=... with the masks")
    condensed, alive = graph.condense()
    layers = [_cluster_layer(condensed, layer, opts) for layer in range(condensed.depth)]
    labels = [r.labels for r in layers]
    threshold = float(opts.cluster_merging_threshold)
    if condensed.skips:
        per_layer = merge_layers_dag(condensed.all_blocks(), condensed.arch, labels, threshold)
    else:
        per_layer = merge_layers(condensed.edges, labels, threshold)
    partition = np.full(sum(graph.arch), -1, dtype=np.int64)
    offsets = np.concatenate([[0], np.cumsum(graph.arch)[:-1]])
    for layer, ids in enumerate(per_layer):
        partition[offsets[layer] + np.flatnonzero(alive[layer])] = ids
    partition, _ = relabel_first_appearance(partition)
    diagnostics = {
        "condensed_arch": [int(a.sum()) for a in alive],
        "layers": [layer.to_json() for layer in layers],
    }
    return Partition(partition, list(graph.arch), "sculpt", diagnostics)


def sculpt_method(network, data=None, options=None):
    """The registry entry "sculpt": Neural Sculpting's detection on a LayeredNetwork -> Partition.

    Diagnostics: condensed_arch, n_modules and the per-layer clustering records (as in modules.json).
    """
    return detect_modules(network.masks, options, weights=network.weights, skips=network.skips)
