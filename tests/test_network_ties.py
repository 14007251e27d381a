"""Results know their network: fingerprints across load paths, partitions of another network refused by every
experiment that takes one, one output folder per --checkpoint file, caches keyed by content, and the
clusterability test on sparse published networks with default options."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import DONE_WHEN, all_files, call_main, edge_run_path, one_error_line, out_folder
from utils.network import LayeredNetwork
from utils.network_files import network_from_state_dict, read_npz_network

DATA = Path(__file__).parent / "data" / "reference_networks"
NET = DATA / "input_overlap_exp__8-2-4__8-24-24-24-4__seed0_fecaec3b.npz"  # task input_overlap 8 2 4
TASK = ["--task", "boolean", "--dataset_path", "datasets/input_overlap_exp/", "--modularity", "8", "2", "4"]
REFERENCE = Path(__file__).resolve().parents[2] / "shared" / "reference" / "models"


def other_network(tmp_path: Path) -> Path:
    """The same published network with one kept weight changed: same arch, same mask, another network."""
    arrays = dict(np.load(NET))
    kept = np.flatnonzero(arrays["mask1"])
    arrays["weight1"].flat[kept[0]] *= 1.5
    path = tmp_path / "other" / "net.npz"
    path.parent.mkdir()
    np.savez(path, **arrays)
    return path


def error_line(err: str) -> str:
    """The one "error:" line of stderr; any other line is a warning or a note."""
    lines = [line for line in err.splitlines() if line.strip()]
    assert all(line.startswith(("error: ", "warning: ", "note: ")) for line in lines), err
    errors = [line for line in lines if line.startswith("error: ")]
    assert len(errors) == 1, err
    return errors[0]


def outputs(tmp_path: Path) -> list[str]:
    return ["--result_path", str(tmp_path / "r"), "--visualization_path", str(tmp_path / "v"), "--quiet"]


# ------------------------------------------------------------------------------------------- fingerprints
def test_fingerprint_is_the_same_through_every_file_of_the_network(tmp_path):
    import torch

    from models.mlp import MLP
    from utils.graph_io import write_graph
    from utils.network_files import load_network_file

    torch.manual_seed(0)
    model = MLP([4, 6, 5, 3], "relu")
    state = {k: v.clone() for k, v in model.state_dict().items()}
    for i in range(3):  # a pruned network: masks with zeros, and weights left nonzero under the mask
        mask = (torch.rand_like(state[f"layers.{i}.weight"]) > 0.4).float()
        state[f"layers.{i}.weight_mask"] = mask
    torch.save(state, tmp_path / "model.pt")
    network = load_network_file(tmp_path / "model.pt")
    # the published layout: weights zero under the mask (as the published code stores them)
    published = {"arch": np.asarray(network.arch)}
    for i in range(3):
        mask = state[f"layers.{i}.weight_mask"].numpy()
        published[f"weight{i}"] = state[f"layers.{i}.weight"].numpy() * mask
        published[f"bias{i}"] = state[f"layers.{i}.bias"].numpy()
        published[f"mask{i}"] = mask.astype(np.uint8)
    np.savez(tmp_path / "published.npz", **published)
    paths = [tmp_path / "published.npz"]
    for fmt, suffix in (("graphml", ".graphml"), ("edgelist", ".edgelist"), ("npz", ".npz")):
        paths.append(write_graph(network, tmp_path / f"graph{suffix}", fmt))
    prints = {path.name: load_network_file(path).fingerprint for path in paths}
    assert set(prints.values()) == {network.fingerprint}, prints

    changed = {k: v.clone() for k, v in state.items()}
    masked = np.flatnonzero(changed["layers.1.weight_mask"].numpy() == 0)[0]
    changed["layers.1.weight"].view(-1)[masked] += 1.0  # under the mask: the same network
    assert network_from_state_dict(changed).fingerprint == network.fingerprint
    kept = np.flatnonzero(changed["layers.1.weight_mask"].numpy())[0]
    changed["layers.1.weight"].view(-1)[kept] += 1e-3  # a kept weight: another network
    assert network_from_state_dict(changed).fingerprint != network.fingerprint
    changed = {k: v.clone() for k, v in state.items()}
    changed["layers.2.bias"][0] += 1e-3
    assert network_from_state_dict(changed).fingerprint != network.fingerprint


# -------------------------------------------------------------------- partitions of another network refused
@pytest.fixture
def foreign_partition(tmp_path, capsys) -> Path:
    """modules.json found (spectral, K=3) on NET; the tests use it with another network of the same arch."""
    argv = [
        "--experiment", "module_detection", "--method", "spectral", "--n_clusters", "3",
        "--checkpoint", str(NET), *outputs(tmp_path / "found"),
    ]  # fmt: skip
    assert call_main(argv, capsys)[0] == 0
    path = out_folder(tmp_path / "found" / "r", f"{NET.parent.name}_{NET.stem}") / "modules_spectral.json"
    assert json.loads(path.read_text())["network"]["fingerprint"] == read_npz_network(NET).fingerprint
    return path


@pytest.mark.parametrize(
    "experiment, extra",
    [
        ("clusterability", ["--num_shuffles", "3"]),
        ("lesion", [*TASK, "--num_shuffles", "3"]),
        ("export_graph", ["--output", "OUT"]),  # never beside the shipped network (the checkout)
    ],
)
def test_every_experiment_with_partition_refuses_one_of_another_network(
    experiment, extra, foreign_partition, tmp_path, capsys
):
    other = other_network(tmp_path)
    extra = [str(tmp_path / "export" / "net.graphml") if e == "OUT" else e for e in extra]
    argv = ["--experiment", experiment, "--checkpoint", str(other), "--partition", str(foreign_partition)]
    rc, _, err = call_main([*argv, *extra, *outputs(tmp_path)], capsys)
    line = one_error_line(err)
    assert rc == 2 and "another network" in line
    assert str(foreign_partition) in line and str(other) in line and str(NET) in line
    assert not (tmp_path / "r").exists() and not (tmp_path / "v").exists()
    # the same partition on its own network is accepted
    argv[argv.index("--checkpoint") + 1] = str(NET)
    rc, _, err = call_main([*argv, *extra, *outputs(tmp_path)], capsys)
    assert rc == 0, err
    if experiment != "export_graph":
        result = out_folder(tmp_path / "r", f"{NET.parent.name}_{NET.stem}") / f"{experiment}.json"
        assert json.loads(result.read_text())["network"]["source"] == str(NET.resolve())


def test_compare_partitions_refuses_partitions_of_two_networks(foreign_partition, tmp_path, capsys):
    other = other_network(tmp_path)
    argv = ["--experiment", "module_detection", "--method", "spectral", "--n_clusters", "3"]
    assert call_main([*argv, "--checkpoint", str(other), *outputs(tmp_path)], capsys)[0] == 0
    theirs = out_folder(tmp_path / "r", "other_net") / "modules_spectral.json"
    compare = ["--experiment", "compare_partitions", "--out", str(tmp_path / "c"), "--quiet"]
    rc, _, err = call_main([*compare, "--partitions", str(foreign_partition), str(theirs)], capsys)
    line = one_error_line(err)
    assert rc == 2 and "different networks" in line and str(theirs) in line
    assert not (tmp_path / "c").exists()
    argv[-1] = "2"  # a second partition of the first network: compared
    assert call_main([*argv, "--checkpoint", str(NET), *outputs(tmp_path / "again")], capsys)[0] == 0
    again = out_folder(tmp_path / "again" / "r", f"{NET.parent.name}_{NET.stem}") / "modules_spectral.json"
    rc, _, err = call_main([*compare, "--partitions", str(foreign_partition), str(again)], capsys)
    assert rc == 0, err


def test_each_method_keeps_its_own_modules_file(tmp_path, capsys):
    base = ["--experiment", "module_detection", "--checkpoint", str(NET), *outputs(tmp_path)]
    assert call_main(base, capsys)[0] == 0
    assert call_main([*base, "--method", "spectral", "--n_clusters", "2"], capsys)[0] == 0
    folder = out_folder(tmp_path / "r", f"{NET.parent.name}_{NET.stem}")
    sculpt = json.loads((folder / "modules.json").read_text())
    spectral = json.loads((folder / "modules_spectral.json").read_text())
    assert sculpt["method"] == "sculpt" and spectral["method"] == "spectral"
    assert {"network.graphml", "network_spectral.graphml"} <= {p.name for p in folder.iterdir()}
    pictures = {p.name for p in (tmp_path / "v").rglob("*.png")}
    assert {"modules.png", "modules_spectral.png"} <= pictures


# ------------------------------------------------------------------------------- one folder per checkpoint
def dry_run_folder(path: Path, capsys) -> str:
    argv = ["--experiment", "module_detection", "--checkpoint", str(path), "--dry_run"]
    rc, out, _ = call_main(argv, capsys)
    assert rc == 0
    return json.loads(out)["run_folders"]["modules"]


def test_checkpoints_of_one_name_in_different_folders_get_different_outputs(tmp_path, capsys):
    for seed in (0, 1):
        (tmp_path / f"seed-{seed}" / "dense").mkdir(parents=True)
    (tmp_path / "x" / "a").mkdir(parents=True)
    (tmp_path / "y" / "a").mkdir(parents=True)
    (tmp_path / "x" / "a" / "net.npz").symlink_to(NET)
    (tmp_path / "y" / "a" / "net.npz").symlink_to(other_network(tmp_path))
    pairs = [
        (tmp_path / "seed-0" / "dense" / "model.pt", tmp_path / "seed-1" / "dense" / "model.pt"),
        (tmp_path / "x" / "a" / "net.npz", tmp_path / "y" / "a" / "net.npz"),
    ]
    for first, second in pairs:
        assert dry_run_folder(first, capsys) != dry_run_folder(second, capsys)


def test_an_output_folder_written_for_another_file_is_refused(tmp_path, capsys):
    argv = ["--experiment", "module_detection", "--checkpoint", str(NET), *outputs(tmp_path)]
    assert call_main(argv, capsys)[0] == 0
    folder = out_folder(tmp_path / "r", f"{NET.parent.name}_{NET.stem}")
    assert json.loads((folder / "source.json").read_text())["source"] == str(NET.resolve())
    (folder / "source.json").write_text(json.dumps({"source": "/elsewhere/net.npz"}))
    before = all_files(tmp_path)
    rc, _, err = call_main(argv, capsys)
    assert rc == 2 and "/elsewhere/net.npz" in one_error_line(err)
    assert all_files(tmp_path) == before


# ------------------------------------------------------------------------------------ caches by content
DETECT = ["--experiment", "module_detection", "--unit_pruning_gradient", "70.0", "--pruning_gradient", "2.5"]


def test_a_replaced_model_pt_is_analysed_and_its_old_results_refused(published_example, tmp_path, capsys):
    root = tmp_path / "results"
    shutil.copytree(published_example, root)
    args = [*DONE_WHEN, *DETECT, "--result_path", str(root), "--visualization_path", str(tmp_path / "v")]
    assert call_main([*args, "--quiet"], capsys)[0] == 0
    run = edge_run_path(root)
    dense = root.joinpath(*run.relative_to(root).parts[:5]) / "dense" / "model.pt"
    os.utime(dense, (1e9, 1e9))  # older than the run's network.npz
    shutil.copy2(dense, run / "model.pt")  # cp -p: the old mtime comes along
    # the partition beside it was found on the network that was there before
    lesion = [*args, "--experiment", "lesion", "--num_shuffles", "3", "--quiet"]
    rc, _, err = call_main(lesion, capsys)
    assert rc == 2 and "has changed since" in error_line(err)
    # module_detection analyses the model.pt that is there, as --checkpoint of that file does
    rc, out, err = call_main([*args, "--quiet"], capsys)
    assert rc == 0 and "another network" in err  # metrics.json beside it is not this network's
    direct = [*DONE_WHEN, "--experiment", "module_detection", "--checkpoint", str(dense)]
    rc, reference, _ = call_main([*direct, *outputs(tmp_path / "direct")], capsys)
    assert rc == 0
    assert out.split(" -> ")[0] == reference.split(" -> ")[0]
    assert "units kept per layer 4 24 4" in out
    assert json.loads((run / "modules.json").read_text())["network"]["fingerprint"] == (
        network_from_state_dict(__import__("torch").load(dense, weights_only=True)).fingerprint
    )


# ---------------------------------------------------------------------- clusterability on sparse networks
def test_a_shuffle_without_a_k_clustering_is_drawn_again():
    from detection_pipeline.spectral.graph import folded_blocks
    from detection_pipeline.spectral.significance import ShuffleJob, shuffled_graph, smaller_job

    network = read_npz_network(DATA / "exemplar__6-3-3-3__6-24-24-24-3__seed1_8c542a9f.npz")
    job = smaller_job(ShuffleJob(folded_blocks(network), network.arch, 4))
    draws = [shuffled_graph(job, "layer", i) for i in range(100)]
    redrawn = [i for i, (_, _, n) in enumerate(draws) if n > 1]
    assert redrawn and all(graph.n_nodes > 4 for graph, _, _ in draws)
    again = shuffled_graph(job, "layer", redrawn[0])
    assert again[2] == draws[redrawn[0]][2] and again[1] == draws[redrawn[0]][1]  # seeded: the same draw


def test_a_network_no_shuffle_can_cluster_is_refused_naming_the_options():
    from detection_pipeline.spectral.graph import folded_blocks
    from detection_pipeline.spectral.significance import ShuffleJob, shuffled_graph, smaller_job
    from utils.errors import InputError

    # ten parallel paths: 40 units, all joined to both ends. K = 39 needs every unit kept, and a layer
    # shuffle keeps them all only when every block comes out a permutation matrix (about 1 in 10^20).
    arch = [10, 10, 10, 10]
    weights = [np.eye(10, dtype=np.float32) for _ in range(3)]
    network = LayeredNetwork(arch, weights, [np.zeros(10)] * 3, [np.ones((10, 10))] * 3)
    job = smaller_job(ShuffleJob(folded_blocks(network), arch, 39))
    assert job.arch == arch
    with pytest.raises(InputError, match="--n_clusters"):
        shuffled_graph(job, "layer", 0)
    assert shuffled_graph(job, "layer_nonzero", 0)[2] == 1  # the mask kept: the paths stay


SPARSE = [  # 96 to 100 of their first 100 layer shuffles left no graph before the anchor's pruning first
    "increasing_hierarchical_levels__8-2-1-2-12__8-36-36-36-36-12__seed1_1ac13277.npz",
    "exemplar__6-3-3-3__6-24-24-24-3__seed1_8c542a9f.npz",  # ... and one of them is redrawn now
    "input_overlap_exp__8-2-4__8-24-24-24-4__seed0_fecaec3b.npz",
]


@pytest.mark.parametrize("name", SPARSE, ids=lambda name: name.split("__")[-1])
def test_clusterability_with_default_options_runs_on_sparse_published_networks(name, tmp_path, capsys):
    """These aborted before ("the weight graph has left (0)"); benchmarks/clusterability_published.py runs
    every published network of the reference."""
    path = DATA / name
    argv = ["--experiment", "clusterability", "--checkpoint", str(path), "--workers", "1", *outputs(tmp_path)]
    rc, out, err = call_main(argv, capsys)
    assert rc == 0, err
    folder = out_folder(tmp_path / "r", f"{path.parent.name}_{path.stem}")
    result = json.loads((folder / "clusterability.json").read_text())
    assert result["num_shuffles"] == 100 and len(result["shuffles"]["layer"]["ncuts"]) == 100
    assert np.isfinite(result["shuffles"]["layer"]["ncuts"]).all()
