"""Spectral clusterability: the weight graph, labels and n-cuts against nn-clustering-pytorch's
own outputs (tests/data/spectral, and every network of ../shared/reference/spectral when it is present)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.metrics import adjusted_rand_score

from detection_pipeline.spectral.cluster import ncut, spectral_labels
from detection_pipeline.spectral.graph import WeightBlock, graph_from_blocks, weight_graph
from detection_pipeline.spectral.shuffles import SHUFFLE_METHODS, shuffle_weights
from detection_pipeline.spectral.significance import ShuffleJob, shuffled_ncut
from utils.network import LayeredNetwork
from utils.network_files import load_network_file

DATA = Path(__file__).parent / "data" / "spectral"
SHARED = Path(__file__).resolve().parent.parent / ".." / "shared" / "reference" / "spectral"
SHIPPED = ["planted4_s12", "pruned_s20"]
shared_only = pytest.mark.skipif(not (SHARED / "nets").is_dir(), reason="../shared/reference absent")


def anchor(name: str, folder: Path = DATA) -> tuple[LayeredNetwork, dict]:
    net_file = folder / f"{name}.npz" if folder == DATA else folder / "nets" / f"{name}.npz"
    return load_network_file(net_file), json.loads((folder / f"{name}.json").read_text())


def anchor_adjacency(name: str, folder: Path = DATA) -> np.ndarray:
    if folder == DATA:
        z = np.load(DATA / f"{name}_adj.npz")
        return sp.csr_matrix((z["data"], z["indices"], z["indptr"]), shape=tuple(z["shape"])).toarray()
    return np.load(folder / f"{name}_graph.npz")["adj"]


def assert_graph_matches(name: str, folder: Path) -> None:
    network, ref = anchor(name, folder)
    ours = weight_graph(network).adjacency
    theirs = anchor_adjacency(name, folder)
    assert ours.shape == theirs.shape and ours.nnz == ref["graph"]["nnz"]
    assert np.abs(ours.toarray() - theirs).max() <= 1e-6 * np.abs(theirs).max()


def assert_ncuts_match(name: str, folder: Path) -> None:
    network, ref = anchor(name, folder)
    adjacency = weight_graph(network).adjacency
    for k in ("K4", "K8"):
        result = ref["results"]["normalize_weights=True"][k]
        assert ncut(adjacency, result["labels"]) == pytest.approx(result["n_cut"], rel=1e-6)
    for given in ref["given_partitions_n_cut"].values():
        assert ncut(adjacency, given["labels"]) == pytest.approx(given["n_cut"], rel=1e-6, abs=1e-12)


def our_clusterings(name: str, folder: Path) -> list[tuple[bool, float, float]]:
    """(same partition up to relabelling, our n-cut, anchor n-cut) at K = 4 and 8, raw and normalised."""
    network, ref = anchor(name, folder)
    out = []
    for normalize in (True, False):
        adjacency = weight_graph(network, normalize=normalize).adjacency
        for k in (4, 8):
            result = ref["results"][f"normalize_weights={normalize}"][f"K{k}"]
            labels = spectral_labels(adjacency, k, 0)
            same = adjusted_rand_score(labels, result["labels"]) == 1.0
            out.append((same, ncut(adjacency, labels), result["n_cut"]))
    return out


@pytest.mark.parametrize("name", SHIPPED)
def test_adjacency_equals_anchor(name):
    assert_graph_matches(name, DATA)


@pytest.mark.parametrize("name", SHIPPED)
def test_ncut_of_anchor_labels_equals_anchor(name):
    assert_ncuts_match(name, DATA)


@pytest.mark.parametrize("name", SHIPPED)
def test_our_clustering_gives_anchor_labels(name):
    for same, ours, theirs in our_clusterings(name, DATA):
        assert same and ours == pytest.approx(theirs, rel=1e-2)


def test_anchor_shuffles_graph_and_ncut():
    """Graphs of the anchor's own shuffled weights (one with an isolated node) give its shuffled n-cuts."""
    network, _ = anchor("pruned_s20")
    saved = np.load(DATA / "pruned_s20_shuffles_all_K8.npz")
    ncuts = json.loads((DATA / "pruned_s20_shuffles_all_K8.json").read_text())["shuffled_n_cuts"]
    for i, expected in enumerate(ncuts):
        blocks = [WeightBlock(j, j + 1, saved[f"all_K8__shuffle{i:02d}__weight{j}"]) for j in range(3)]
        graph = graph_from_blocks(blocks, network.arch)
        labels = saved[f"all_K8__shuffle{i:02d}__labels"]
        assert graph.n_nodes == len(labels) == (169 if i == 1 else 170)
        assert ncut(graph.adjacency, labels) == pytest.approx(expected, rel=1e-6)


@shared_only
def test_every_reference_network():
    names = sorted(p.stem for p in (SHARED / "nets").glob("*.npz"))
    agreements = []
    for name in names:
        assert_graph_matches(name, SHARED)
        assert_ncuts_match(name, SHARED)
        for same, ours, theirs in our_clusterings(name, SHARED):
            assert ours == pytest.approx(theirs, rel=1e-2), name
            agreements.append(same)
    assert np.mean(agreements) >= 0.9, f"{sum(agreements)}/{len(agreements)} clusterings agree"


@shared_only
@pytest.mark.parametrize("name", ["planted4_s12", "pruned_s20"])
def test_shuffle_means_within_three_standard_errors(name):
    runs = json.loads((SHARED / f"{name}_shuffles.json").read_text())["runs"]
    network, _ = anchor(name, SHARED)
    from detection_pipeline.spectral.graph import folded_blocks

    blocks = folded_blocks(network)
    for run, method in (("all", "layer"), ("nonzero", "layer_nonzero")):
        for k in (4, 8):
            theirs = np.asarray(runs[f"{run}_K{k}"]["shuffled_n_cuts"])
            job = ShuffleJob(blocks, network.arch, k, seed=0)
            ours = np.array([shuffled_ncut(job, method, i) for i in range(len(theirs))])
            se = np.sqrt(theirs.var(ddof=1) / theirs.size + ours.var(ddof=1) / ours.size)
            assert abs(ours.mean() - theirs.mean()) <= 3 * se, (run, k, ours.mean(), theirs.mean(), se)


# -- shuffles ------------------------------------------------------------------------------------------
def pruned_matrix(seed=0, shape=(12, 9)) -> np.ndarray:
    rng = np.random.default_rng(seed)
    w = rng.standard_normal(shape).astype(np.float32)
    w[rng.random(shape) < 0.6] = 0
    return w


def test_layer_shuffles_permute_all_entries():
    w = pruned_matrix()
    (out,) = shuffle_weights([w], "layer", np.random.default_rng(1))
    assert np.array_equal(np.sort(out.ravel()), np.sort(w.ravel())) and not np.array_equal(out, w)
    assert not np.array_equal(out != 0, w != 0)


def test_nonzero_shuffles_keep_the_mask():
    w = pruned_matrix()
    (out,) = shuffle_weights([w], "layer_nonzero", np.random.default_rng(1))
    assert np.array_equal(out != 0, w != 0)
    assert np.array_equal(np.sort(out[out != 0]), np.sort(w[w != 0])) and not np.array_equal(out, w)


def test_distribution_shuffles_draw_from_the_kde():
    """Nonzeros all ±1 (a quarter +1): KDE draws are N(±1, 0.01²), about a quarter near +1."""
    w = pruned_matrix(shape=(80, 60))
    w[w != 0] = np.where(np.random.default_rng(5).random((w != 0).sum()) < 0.25, 1.0, -1.0)
    for method in ("layer_nonzero_distribution", "layer_all_distribution"):
        (out,) = shuffle_weights([w], method, np.random.default_rng(2))
        assert (out != 0).sum() == (w != 0).sum()
        if method == "layer_nonzero_distribution":
            assert np.array_equal(out != 0, w != 0)
        drawn = out[out != 0].astype(np.float64)
        noise = np.abs(drawn) - 1.0
        assert abs(noise.mean()) < 0.002 and 0.009 < noise.std() < 0.011
        assert abs(np.mean(drawn > 0) - np.mean(w[w != 0] > 0)) < 0.05


def test_shuffle_is_a_function_of_seed_method_index():
    network, _ = anchor("planted4_s12")
    from detection_pipeline.spectral.graph import folded_blocks

    job = ShuffleJob(folded_blocks(network), network.arch, 4, seed=3)
    assert shuffled_ncut(job, "layer", 2) == shuffled_ncut(job, "layer", 2)
    assert shuffled_ncut(job, "layer", 2) != shuffled_ncut(job, "layer", 3)
    assert len(SHUFFLE_METHODS) == 4


# -- graph details -------------------------------------------------------------------------------------
def test_batch_norm_folded_and_components_pruned():
    """3-2-2-2 net: hidden unit 1 of layer 1 has no incoming edge, so its component (it and what only it
    feeds) misses the inputs; batch norm after layer 1 scales its rows by gamma/sqrt(var+eps)."""
    w0 = np.array([[1.0, 2.0, 0.5], [0.0, 0.0, 0.0]], np.float32)
    w1 = np.array([[3.0, 0.0], [0.0, 4.0]], np.float32)
    w2 = np.array([[1.0, 0.0], [0.0, 1.0]], np.float32)
    masks = [(w != 0).astype(np.uint8) for w in (w0, w1, w2)]
    norm = {
        "gamma": np.array([2.0, 1.0]),
        "beta": np.zeros(2),
        "mean": np.zeros(2),
        "var": np.array([3.0, 0.0]),
    }
    network = LayeredNetwork([3, 2, 2, 2], [w0, w1, w2], [np.zeros(2)] * 3, masks, norms=[norm, None, None])
    raw = weight_graph(network, normalize=False)
    scale = 2.0 / np.sqrt(3.0 + 1e-5)
    dense = raw.adjacency.toarray()  # kept nodes 0 1 2 3 5 7: index 4 is node 5 (layer 2, unit 0)
    assert raw.kept.tolist() == [1, 1, 1, 1, 0, 1, 0, 1, 0]
    assert dense[3, 0] == pytest.approx(1.0 * scale, rel=1e-6) and dense[4, 3] == pytest.approx(3.0)
    loose = weight_graph(network, normalize=False, prune="zero_degree")
    assert loose.kept.all()  # every node has an edge
    normalised = weight_graph(network).adjacency.toarray()
    s = np.linalg.norm(np.array([1.0, 2.0, 0.5]) * scale) + 1e-5
    assert normalised[3, 1] == pytest.approx(2.0 * scale / s, rel=1e-5)
    assert normalised[4, 3] == pytest.approx(3.0 * s / (3.0 * s + 1e-5), rel=1e-5)  # layer 2 norm 1 too


def test_jobs_shuffle_the_network_without_the_units_its_graph_pruning_removes():
    """Both anchors shuffle the network without what their graph pruning removes: 001 the zero-degree units,
    000 (run_experiment: delete_isolated_ccs, then shuffle that smaller weights array) every component that
    does not join the first and last layers."""
    from detection_pipeline.spectral.graph import folded_blocks
    from detection_pipeline.spectral.significance import shuffled_graph, smaller_job

    network, _ = anchor("pruned_s20")
    masks = [m.copy() for m in network.masks]
    masks[0][:6] = 0  # hidden units 0..5 of layer 1: no incoming edges
    masks[1][:, :6] = 0  # ... and no outgoing ones: zero degree
    masks[1][:6, :] = 0  # layer-2 units 0..5: no incoming edges
    masks[2][:, :6] = 0  # ... nor outgoing ones
    masks[1][5, 5] = 1  # except an island: layer-1 unit 5 -> layer-2 unit 5, joined to neither end
    weights = [w.copy() for w in network.weights]
    weights[1][5, 5] = 0.7  # (the pruned weights are 0 under the mask)
    island = LayeredNetwork(network.arch, weights, network.biases, masks)
    blocks = folded_blocks(island)
    loose = smaller_job(ShuffleJob(blocks, island.arch, 4, graph_prune="zero_degree"))
    assert loose.arch == [64, 43, 43, 10] and loose.blocks[0].weight.shape == (43, 64)
    assert shuffled_graph(loose, "layer", 0)[0].n_nodes <= 160
    whole = smaller_job(ShuffleJob(blocks, island.arch, 4))
    assert whole.arch == [64, 42, 42, 10] and whole.blocks[1].weight.shape == (42, 42)
    assert shuffled_graph(whole, "layer", 0)[0].n_nodes <= 158
