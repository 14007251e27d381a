"""Module detection: published partitions, hand-built networks, every option, file errors."""

from __future__ import annotations

import json
import os
import random
import warnings
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp
from scipy.spatial.distance import pdist

from detection_pipeline import clustering
from detection_pipeline.detect import DetectionOptions, detect_modules
from detection_pipeline.graph import LayeredGraph, NoPathError
from run.parser import parse_config
from utils.errors import SculptError
from utils.network_files import load_published_npz

DATA = Path(__file__).parent / "data" / "reference_networks"
REFERENCE = Path(
    os.environ.get("SCULPT_REFERENCE", Path(__file__).resolve().parents[2] / "shared" / "reference")
)
SHIPPED = sorted(DATA.glob("*.npz"))


def published_options(arch) -> DetectionOptions:
    steps = len(arch) - 1
    return DetectionOptions(feature_step_size=steps, clusterability_step_size=steps)


def canonical(partition) -> list[int]:
    """Module ids relabelled by first appearance, -1 kept: equal lists = equal partitions."""
    mapping: dict[int, int] = {}
    return [-1 if p < 0 else mapping.setdefault(int(p), len(mapping)) for p in partition]


def assert_matches_published(path: Path) -> None:
    net = load_published_npz(path)
    modules = detect_modules(net.masks, published_options(net.arch))
    assert canonical(modules.labels) == canonical(net.metrics["anchor_partition"]), path.name


# --- published partitions -------------------------------------------------------------------------------


def test_shipped_copies_exist():
    assert len(SHIPPED) >= 8


@pytest.mark.parametrize("path", SHIPPED, ids=[p.stem for p in SHIPPED])
def test_shipped_reference_partitions(path):
    assert_matches_published(path)


@pytest.mark.skipif(
    not (REFERENCE / "models" / "index.json").is_file(), reason="shared reference not present"
)
def test_sampled_reference_partitions():
    entries = json.loads((REFERENCE / "models" / "index.json").read_text())
    for entry in random.Random(0).sample(entries, 60):
        assert_matches_published(REFERENCE / entry["file"])


# --- hand-built networks --------------------------------------------------------------------------------


def two_disjoint_masks():
    """Inputs {0,1} -> hidden {0,1} -> output 0 and inputs {2,3} -> hidden {2,3} -> output 1, fully wired."""
    first = np.zeros((4, 4), dtype=np.uint8)
    first[:2, :2] = 1
    first[2:, 2:] = 1
    second = np.zeros((2, 4), dtype=np.uint8)
    second[0, :2] = 1
    second[1, 2:] = 1
    return [first, second]


def test_two_disjoint_subnetworks_are_two_modules():
    modules = detect_modules(two_disjoint_masks(), DetectionOptions())
    layers = modules.by_layer()
    assert modules.n_modules == 2
    inputs, outputs = layers[0], layers[2]
    assert inputs[0] == inputs[1] and inputs[2] == inputs[3] and inputs[0] != inputs[2]
    assert outputs[0] == inputs[0] and outputs[1] == inputs[2]
    assert (modules.labels >= 0).all()


def test_dead_units_are_dropped():
    # input 4 has no edge; hidden 4 has no outgoing edge; hidden-2 unit 2 is fed only by hidden-1 unit 3,
    # which has no incoming edge, so both go (the second only once the first is gone).
    first = np.zeros((5, 5), dtype=np.uint8)
    first[:2, :2] = 1
    first[2, 2:4] = 1
    first[4, 0] = 1
    second = np.zeros((3, 5), dtype=np.uint8)
    second[0, :2] = 1
    second[1, 2] = 1
    second[2, 3] = 1
    third = np.zeros((2, 3), dtype=np.uint8)
    third[0, 0] = 1
    third[1, 1:] = 1
    modules = detect_modules([first, second, third], DetectionOptions())
    assert [np.flatnonzero(~a).tolist() for a in modules.alive] == [[4], [3, 4], [2], []]
    layers = modules.by_layer()
    assert layers[0][4] == -1 and layers[1][3] == -1 and layers[1][4] == -1 and layers[2][2] == -1
    assert modules.diagnostics["condensed_arch"] == [4, 3, 2, 2]


def test_output_units_are_never_dropped():
    masks = two_disjoint_masks()
    masks[1] = np.vstack([masks[1], np.zeros((1, 4), dtype=np.uint8)])  # output 2 has no edge
    modules = detect_modules(masks, DetectionOptions())
    assert modules.alive[2].all()
    assert modules.by_layer()[2][2] >= 0


def test_no_path_raises():
    masks = two_disjoint_masks()
    masks[1][:] = 0
    with pytest.raises(NoPathError):
        detect_modules(masks, DetectionOptions())
    assert issubclass(NoPathError, SculptError)


def test_condense_is_per_layer_sparse():
    graph = LayeredGraph.from_masks(two_disjoint_masks())
    assert all(sp.issparse(b) for b in graph.edges)
    condensed, alive = graph.condense()
    assert condensed.arch == [4, 4, 2] and all(a.all() for a in alive)


def test_bad_mask_shapes_raise():
    with pytest.raises(SculptError):
        detect_modules([np.ones((3, 4)), np.ones((2, 4))], DetectionOptions())


# --- every option ---------------------------------------------------------------------------------------


def random_network(seed=0, arch=(6, 12, 10, 4), density=0.35):
    rng = np.random.default_rng(seed)
    masks = [(rng.random((arch[i + 1], arch[i])) < density).astype(np.uint8) for i in range(len(arch) - 1)]
    weights = [rng.normal(size=m.shape).astype(np.float32) for m in masks]
    return masks, weights


COMBOS = [
    ("cosine", "average"),
    ("cosine", "complete"),
    ("cosine", "single"),
    ("jaccard", "average"),
    ("jaccard", "single"),
    ("euclidean", "ward"),
    ("euclidean", "single"),
    ("euclidean", "complete"),
]


@pytest.mark.parametrize("direction", ["outgoing", "incoming", "incomming", "bidirectional"])
@pytest.mark.parametrize("weighted", [False, True])
def test_every_direction_and_weighting_runs(direction, weighted):
    masks, weights = random_network()
    for criterion in clustering.CRITERIA:
        for metric, linkage in COMBOS:
            options = DetectionOptions(
                feature_direction=direction,
                feature_weighted=weighted,
                clustering_distance_measure=metric,
                clustering_linkage=linkage,
                stopping_criteria=criterion,
                feature_step_size=2,
                clusterability_step_size=1,
            )
            modules = detect_modules(masks, options, weights=weights)
            assert modules.labels.shape == (sum(modules.arch),)
            assert set(modules.labels[modules.labels >= 0]) == set(range(modules.n_modules))
            json.dumps(modules.to_json())


def test_options_built_from_the_command_line_are_accepted():
    from run.options import detection_options

    config = parse_config(["--experiment", "module_detection", "--feature_direction", "incomming"])
    masks, _ = random_network(1)
    assert detect_modules(masks, detection_options(config)).n_modules >= 1


def test_ward_needs_euclidean():
    masks, _ = random_network()
    with pytest.raises(SculptError, match="euclidean"):
        detect_modules(masks, DetectionOptions(clustering_linkage="ward"))


def test_weighted_needs_weights():
    masks, _ = random_network()
    with pytest.raises(SculptError):
        detect_modules(masks, DetectionOptions(feature_weighted=True))


def test_to_json_lists_module_units():
    modules = detect_modules(two_disjoint_masks(), DetectionOptions())
    out = json.loads(json.dumps(modules.to_json()))
    assert out["n_modules"] == 2
    assert out["modules"][0]["units"]["0"] == [0, 1] and out["modules"][1]["units"]["0"] == [2, 3]
    assert len(out["layers"]) == 2 and out["layers"][0]["k"] == 2


# --- the fast clustering route equals scikit-learn -----------------------------------------------------


def binary_rows(seed, n, m, density):
    rng = np.random.default_rng(seed)
    x = (rng.random((n, m)) < density).astype(float)
    x[x.sum(axis=1) == 0, 0] = 1  # no empty rows (cosine is undefined there)
    x[1] = x[0]  # duplicates make ties
    return sp.csr_matrix(x)


@pytest.mark.parametrize("metric", ["cosine", "jaccard", "euclidean"])
def test_distances_equal_pdist_bitwise(metric):
    for seed in range(5):
        x = binary_rows(seed, 40, 30, 0.2)
        assert np.array_equal(clustering.condensed_distances(x, metric), pdist(x.toarray(), metric))


@pytest.mark.parametrize("metric,linkage", COMBOS)
def test_tree_cuts_equal_sklearn_fits(metric, linkage):
    from sklearn.cluster import AgglomerativeClustering

    for seed in range(3):
        x = binary_rows(seed, 25, 12, 0.25)
        tree = clustering.linkage_tree(x, metric, linkage)
        for k in range(1, 26):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # sklearn warns about jaccard on float data
                ref = AgglomerativeClustering(n_clusters=k, metric=metric, linkage=linkage).fit(x.toarray())
            assert canonical(clustering.cut(tree, k)) == canonical(ref.labels_), (seed, k)


def test_modularity_scores_equal_direct_formula():
    x = binary_rows(3, 30, 20, 0.3)
    d = clustering.condensed_distances(x, "cosine")
    tree = clustering.linkage_tree(x, "cosine", "average", d)
    scores = clustering.modularity_scores(tree, d, 30)
    full = clustering.square(d, 30)
    full /= full.sum()
    for k in range(2, 30):
        onehot = np.eye(k)[clustering.cut(tree, k)]
        a = onehot.T @ full.sum(axis=1)
        direct = np.trace(onehot.T @ full @ onehot) - a @ a
        assert abs(scores[k - 2] - direct) <= 1e-8


def test_best_k_ties_go_to_larger_k():
    choice = clustering.best_k(np.array([-0.3, -0.5, -0.5, 0.1]))
    assert choice.k == 4 and choice.score == -0.5
    assert clustering.best_k(np.zeros(0)).k is None


# --- loading published files ----------------------------------------------------------------------------


def test_load_published_npz_fields():
    net = load_published_npz(SHIPPED[0])
    assert len(net.masks) == len(net.arch) - 1 and net.metrics["anchor_partition"].shape == (sum(net.arch),)
    assert net.masks[0].shape == (net.arch[1], net.arch[0]) and net.metrics["seed"] in (0, 1)


def _write_npz(path, **arrays):
    np.savez(path, **arrays)
    return path


def test_load_errors(tmp_path):
    with pytest.raises(SculptError, match="does not exist"):
        load_published_npz(tmp_path / "missing.npz")
    corrupt = tmp_path / "corrupt.npz"
    corrupt.write_bytes(b"not a zip file at all")
    with pytest.raises(SculptError, match="cannot read"):
        load_published_npz(corrupt)
    good = {
        "arch": np.array([3, 2]),
        "weight0": np.ones((2, 3)),
        "bias0": np.zeros(2),
        "mask0": np.ones((2, 3)),
    }
    no_arch = {k: v for k, v in good.items() if k != "arch"}
    with pytest.raises(SculptError, match="arch"):
        load_published_npz(_write_npz(tmp_path / "a.npz", **no_arch))
    no_mask = {k: v for k, v in good.items() if k != "mask0"}
    with pytest.raises(SculptError, match="mask0"):
        load_published_npz(_write_npz(tmp_path / "b.npz", **no_mask))
    with pytest.raises(SculptError, match="shape"):
        load_published_npz(_write_npz(tmp_path / "c.npz", **{**good, "weight0": np.ones((3, 3))}))
    with pytest.raises(SculptError, match="anchor_partition"):
        load_published_npz(_write_npz(tmp_path / "d.npz", **good, anchor_partition=np.zeros(4)))
    net = load_published_npz(_write_npz(tmp_path / "e.npz", **good))
    assert net.metrics["anchor_partition"] is None and net.arch == [3, 2]
