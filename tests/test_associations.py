"""Associations and Newman-Q against the anchor's own outputs (wrongu/modularity, in shared/reference) and
hand computations; the CLI of --method newman, compare_partitions and associations; bad input."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from detection_pipeline.associations.compare import (
    alignment_null,
    alignment_score,
    compare_labels,
    spearman_upper,
    transfer_q,
    variation_of_information,
    without_diagonal,
)
from detection_pipeline.associations.matrices import ASSOCIATIONS, association_matrices, normalised
from detection_pipeline.associations.newman import (
    effective_clusters,
    entropy_temperatures,
    maximise_q,
    maximise_q_batch,
    q_value,
    spectral_bisection,
)
from tests.conftest import REPO, call_main, out_folder
from utils.network_files import load_network_file

SHIPPED = REPO / "tests" / "data" / "associations"
REFERENCE = REPO.parent / "shared" / "reference" / "associations"


def _cases() -> list:
    cases = [pytest.param(SHIPPED / "planted4_s12.npz", SHIPPED, id="shipped-planted4_s12")]
    if (REFERENCE / "nets").is_dir():
        for net in sorted((REFERENCE / "nets").glob("*.npz")):
            if (REFERENCE / f"{net.stem}_assoc.npz").is_file():
                cases.append(pytest.param(net, REFERENCE, id=f"reference-{net.stem}"))
    return cases


CASES = _cases()


def _load(net_path: Path, folder: Path):
    arrays = np.load(net_path)
    assoc = np.load(folder / f"{net_path.stem}_assoc.npz")
    modularity = json.loads((folder / f"{net_path.stem}_modularity.json").read_text())
    return load_network_file(net_path), arrays, assoc, modularity


def _close(ours, theirs, rtol=1e-5):
    theirs = np.asarray(theirs, dtype=np.float64)
    scale = np.abs(theirs).max()
    assert np.abs(ours - theirs).max() <= rtol * scale, np.abs(ours - theirs).max() / scale


@pytest.mark.parametrize("net_path, folder", CASES)
def test_matrices_equal_the_anchors(net_path, folder):
    network, arrays, assoc, _ = _load(net_path, folder)
    inputs, labels = arrays["inputs"], arrays["labels"]
    targets = np.eye(network.arch[-1], dtype=np.float32)[labels]
    ours = association_matrices(network, inputs, targets)
    for name in ASSOCIATIONS:
        for layer in range(network.depth - 1):
            theirs = assoc[f"bs256__{name}__layer{layer}"]
            # The anchor's one-batch backward_hess is the mean per-sample Hessian / 256 (module docstring).
            scale = 1.0 / len(inputs) if name == "backward_hess" else 1.0
            _close(ours[name][layer] * scale, theirs)
    # Its 3-batch variant: (1/N) sum over batches of each batch's mean Hessian, from ours per batch.
    bounds = [(0, 100), (100, 200), (200, len(inputs))]
    per_batch = [
        association_matrices(network, inputs[a:b], targets[a:b], ["backward_hess"], absolute=False)[
            "backward_hess"
        ]
        for a, b in bounds
    ]
    for layer in range(network.depth - 1):
        mixed = np.abs(sum(m[layer] for m in per_batch)) / len(inputs)
        _close(mixed, assoc[f"bs100__backward_hess__layer{layer}"])
        _close(normalised(mixed), assoc[f"bs100__backward_hess_norm__layer{layer}"])
        for name in ASSOCIATIONS:
            if not name.startswith("backward_hess"):
                _close(ours[name][layer], assoc[f"bs100__{name}__layer{layer}"])


@pytest.mark.parametrize("net_path, folder", CASES)
def test_q_of_the_anchors_partitions_and_its_svd_initialisation(net_path, folder):
    _, _, assoc, modularity = _load(net_path, folder)
    for key, layer in modularity["layers"].items():
        given = layer["given_partition_labels"]
        for name in ASSOCIATIONS:
            adjacency = without_diagonal(assoc[f"bs100__{name}__{key}"])
            found = layer[name]
            assert abs(q_value(adjacency, np.array(found["labels"])) - found["Q"]) <= 1e-6
            for partition, scores in found["given_partitions"].items():
                assert abs(q_value(adjacency, np.array(given[partition])) - scores["Q_girvan_newman"]) <= 1e-6
                raw = assoc[f"bs100__{name}__{key}"]
                assert (
                    abs(q_value(raw, np.array(given[partition])) - scores["Q_girvan_newman_with_diagonal"])
                    <= 1e-6
                )
            # The anchor's SVD bisection is deterministic: ours reaches the same Q.
            initial = spectral_bisection(adjacency, "svd")
            assert abs(q_value(adjacency, initial) - found["spectral_init_Q_girvan_newman"]) <= 1e-6
            assert abs(effective_clusters(np.array(found["labels"])) - found["soft_num_clusters"]) <= 1e-5


@pytest.mark.parametrize("net_path, folder", CASES)
def test_optimised_q_at_least_the_anchors_on_every_layer(net_path, folder):
    _, _, assoc, modularity = _load(net_path, folder)
    keys = [(key, name) for key in modularity["layers"] for name in ASSOCIATIONS]
    matrices = [without_diagonal(assoc[f"bs100__{name}__{key}"]) for key, name in keys]
    results = maximise_q_batch(matrices, steps=5000, seeds=[0] * len(matrices))
    for (key, name), result, matrix in zip(keys, results, matrices):
        assert result.q >= modularity["layers"][key][name]["Q"] - 0.01, (key, name)
        assert abs(result.q - q_value(matrix, result.labels)) <= 1e-9


@pytest.mark.parametrize("net_path, folder", CASES)
def test_pair_scores_equal_the_anchors(net_path, folder):
    _, _, assoc, modularity = _load(net_path, folder)
    layer = modularity["layers"]["layer1"]
    for key in ["backward_hess:forward_cov", "backward_jac:forward_jac_norm", "forward_cov:forward_cov_norm"]:
        a, b = key.split(":")
        la, lb = np.array(layer[a]["labels"]), np.array(layer[b]["labels"])
        ma, mb = assoc[f"bs100__{a}__layer1"], assoc[f"bs100__{b}__layer1"]
        theirs = layer["pairs"][key]
        assert transfer_q(ma, la, lb)["transfer_q"] == pytest.approx(theirs["transfer_AaPb"], abs=1e-6)
        assert transfer_q(mb, lb, la)["transfer_q_norm"] == pytest.approx(
            theirs["transfer_AbPa_norm"], abs=1e-5
        )
        r = spearman_upper(without_diagonal(ma), without_diagonal(mb))["spearman_r"]
        assert r == pytest.approx(theirs["adj_spearman_r"], abs=1e-6)
        if (la < 0).any() or (lb < 0).any():
            continue  # dead units: the anchor divides by another count; compare_labels drops them first
        assert alignment_score(la, lb) == pytest.approx(theirs["alignment_score"], abs=1e-9)
        # Null of 1000 permutations (ours numpy, theirs torch): means agree to sampling error.
        assert alignment_null(la, lb, 1000).mean() == pytest.approx(theirs["null_mean"], abs=0.02)


def test_q_and_scores_by_hand():
    # Two triangles joined by one edge: m = 7 edges, Q = 2 * (3/7 - (7/14)^2) = 5/14.
    adjacency = np.zeros((6, 6))
    for i, j in [(0, 1), (1, 2), (0, 2), (3, 4), (4, 5), (3, 5), (2, 3)]:
        adjacency[i, j] = adjacency[j, i] = 1.0
    labels = np.array([0, 0, 0, 1, 1, 1])
    assert q_value(adjacency, labels) == pytest.approx(5 / 14)
    assert q_value(adjacency, np.zeros(6, dtype=int)) == pytest.approx(0.0)
    found = maximise_q(adjacency, steps=200)
    assert found.q == pytest.approx(5 / 14) and alignment_score(found.labels, labels) == 1.0
    assert effective_clusters(np.array([0, 0, 1, 1])) == pytest.approx(2.0)
    assert effective_clusters(np.array([0, 0, 0, -1])) == pytest.approx(1.0)
    assert variation_of_information(labels, labels[::-1]) == pytest.approx(0.0)
    assert variation_of_information(labels, np.arange(6)) == pytest.approx(np.log(3.0))  # H(b|a) = log 3
    scores = compare_labels(labels, 1 - labels, n_shuffle=50)
    assert scores["ari"] == pytest.approx(1.0) and scores["alignment"] == 1.0
    assert scores["alignment_p"] == pytest.approx(
        (1 + (alignment_null(labels, 1 - labels, 50) >= 1).sum()) / 51
    )


def test_temperature_meets_the_entropy_target():
    from scipy.stats import entropy

    rng = np.random.default_rng(3)
    delta = rng.normal(size=(5, 7)) * np.array([1e-4, 1e-2, 1.0, 10.0, 3.0])[:, None]
    allowed = np.ones_like(delta, dtype=bool)
    allowed[1, 3:] = False
    temperature = entropy_temperatures(delta, allowed, 0.15)
    for row in range(5):
        values = delta[row][allowed[row]] / temperature[row]
        p = np.exp(values - values.max())
        assert entropy(p / p.sum()) == pytest.approx(0.15, abs=0.01)


def test_chains_batched_or_alone_agree():
    rng = np.random.default_rng(0)
    mats = []
    for n in (12, 20):
        m = np.abs(rng.normal(size=(n, n)))
        mats.append(m + m.T)
    together = maximise_q_batch(mats, steps=300, seeds=[4, 5])
    alone = [maximise_q(m, steps=300, seed=s) for m, s in zip(mats, (4, 5))]
    for a, b in zip(together, alone):
        assert a.q == b.q and np.array_equal(a.labels, b.labels)


# -- the CLI -------------------------------------------------------------------------------------------

NET = SHIPPED / "planted4_s12.npz"


def _newman_argv(tmp_path, *extra):
    return [
        "--experiment", "module_detection", "--method", "newman", "--checkpoint", str(NET),
        "--input_batch", str(NET), "--loss", "CE", "--mc_steps", "300", "--quiet",
        "--result_path", str(tmp_path / "r"), "--visualization_path", str(tmp_path / "v"), *extra,
    ]  # fmt: skip


def test_method_newman_writes_modules_json_and_reproduces(tmp_path, capsys):
    rc, out, _ = call_main(_newman_argv(tmp_path, "--association", "forward_jac"), capsys)
    assert rc == 0 and "Q per hidden layer" in out
    path = out_folder(tmp_path / "r", "associations_planted4_s12") / "modules_newman.json"
    first = json.loads(path.read_text())
    assert first["method"] == "newman" and first["association"] == "forward_jac"
    assert first["bisection"] == "newman"
    layers = first["layers"]
    assert [entry["layer"] for entry in layers] == [1, 2]
    groups = np.load(NET)
    for entry in layers:
        matrix = np.array(entry["association_matrix"])
        assert entry["Q"] == pytest.approx(
            q_value(without_diagonal(matrix), np.array(entry["labels"])), abs=1e-6
        )
        # The planted blocks are found in the input Jacobian's similarity.
        assert alignment_score(np.array(entry["labels"]), groups[f"groups{entry['layer']}"]) >= 0.9
    assert (out_folder(tmp_path / "v", "associations_planted4_s12") / "modules_newman.png").is_file()
    assert call_main(_newman_argv(tmp_path, "--association", "forward_jac"), capsys)[0] == 0
    assert json.loads(path.read_text())["partition"] == first["partition"]


def _write_batch(path, **arrays):
    np.savez(path, **arrays)
    return str(path)


@pytest.mark.parametrize(
    "kind, message",
    [
        ("no_targets", "needs targets"),
        ("wrong_width", "takes 64 inputs"),
        ("dead_layer", "fewer than 2 alive"),
    ],
)
def test_bad_input_one_line_exit_2_nothing_written(tmp_path, capsys, kind, message):
    arrays = np.load(NET)
    argv = _newman_argv(tmp_path, "--association", "backward_hess")
    if kind == "no_targets":
        argv[argv.index("--input_batch") + 1] = _write_batch(tmp_path / "b.npz", inputs=arrays["inputs"])
    elif kind == "wrong_width":
        argv[argv.index("--input_batch") + 1] = _write_batch(
            tmp_path / "b.npz", inputs=arrays["inputs"][:, :10], labels=arrays["labels"]
        )
    else:
        state = {key: arrays[key] for key in arrays.files}
        state["mask1"] = np.zeros_like(state["mask1"])
        state["mask1"][:, 0] = 1  # hidden 2 keeps inputs but hidden 1 keeps one unit feeding forward
        state["mask0"] = np.zeros_like(state["mask0"])
        state["mask0"][0, :] = 1
        np.savez(tmp_path / "dead.npz", **state)
        argv[argv.index("--checkpoint") + 1] = str(tmp_path / "dead.npz")
    rc, out, err = call_main(argv, capsys)
    assert rc == 2 and message in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "r").exists() and not (tmp_path / "v").exists()


def test_compare_partitions_and_associations_experiment(tmp_path, capsys):
    base = [
        "--checkpoint", str(NET), "--input_batch", str(NET), "--loss", "CE", "--mc_steps", "300", "--quiet",
        "--n_shuffle", "200",
    ]  # fmt: skip
    rc, out, _ = call_main(["--experiment", "associations", *base, "--out", str(tmp_path / "a")], capsys)
    assert rc == 0 and out.startswith("associations:")
    arrays = np.load(tmp_path / "a" / "associations.npz")
    assert sorted(arrays.files) == sorted(f"{n}__hidden{layer}" for n in ASSOCIATIONS for layer in (1, 2))
    reference = np.load(SHIPPED / "planted4_s12_assoc.npz")
    _close(arrays["forward_cov__hidden2"], reference["bs256__forward_cov__layer1"])  # diagonal included
    for name in ("agreement.png", "association_matrices.png", "comparison.json", "modules_forward_cov.json"):
        assert (tmp_path / "a" / name).is_file()
    comparison = json.loads((tmp_path / "a" / "comparison.json").read_text())
    assert len(comparison["layers"]["1"]) == 28  # 8 choose 2 pairs
    files = [
        str(tmp_path / "a" / f"modules_{n}.json") for n in ("forward_cov", "backward_jac", "forward_cov")
    ]
    argv = [
        "--experiment",
        "compare_partitions",
        "--partitions",
        *files,
        "--out",
        str(tmp_path / "c"),
        "--quiet",
    ]
    assert call_main(argv, capsys)[0] == 0
    compared = json.loads((tmp_path / "c" / "comparison.json").read_text())
    assert compared["names"] == ["newman:forward_cov#1", "newman:backward_jac", "newman:forward_cov#2"]
    same = compared["layers"]["1"]["newman:forward_cov#1|newman:forward_cov#2"]
    assert same["ari"] == pytest.approx(1.0) and same["spearman_r"] == pytest.approx(1.0)
    pair = compared["layers"]["2"]["newman:forward_cov#1|newman:backward_jac"]
    assert pair["spearman_r"] == pytest.approx(
        comparison["layers"]["2"]["forward_cov|backward_jac"]["spearman_r"]
    )
    assert (tmp_path / "c" / "agreement.png").is_file()
    rc, _, err = call_main(["--experiment", "compare_partitions", "--partitions", files[0]], capsys)
    assert rc == 2 and "two or more" in err


def test_input_batch_labels_or_targets(tmp_path):
    from detection_pipeline.associations.method import load_input_batch
    from utils.errors import InputError

    arrays = np.load(NET)
    onehot = np.eye(10, dtype=np.float32)[arrays["labels"]]
    by_labels = load_input_batch(
        _write_batch(tmp_path / "l.npz", inputs=arrays["inputs"], labels=arrays["labels"]), [64, 32, 32, 10]
    )
    by_targets = load_input_batch(
        _write_batch(tmp_path / "t.npz", inputs=arrays["inputs"], targets=onehot), [64, 32, 32, 10]
    )
    assert np.array_equal(by_labels.targets, onehot) and np.array_equal(by_targets.targets, onehot)
    with pytest.raises(InputError, match="0..9"):
        load_input_batch(
            _write_batch(tmp_path / "b.npz", inputs=arrays["inputs"], labels=arrays["labels"] + 5),
            [64, 32, 32, 10],
        )
    network = load_network_file(NET)
    network.activation = "ste"
    with pytest.raises(InputError, match="differentiable"):
        association_matrices(network, arrays["inputs"], onehot)
