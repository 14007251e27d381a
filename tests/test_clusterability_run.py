"""--method spectral and --experiment clusterability end to end: files written, the anchor's numbers,
seeding independent of --workers, resuming, and bad input (one line, exit 2, nothing written)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from sklearn.metrics import adjusted_rand_score

from tests.conftest import all_files, call_main, one_error_line, out_folder

DATA = Path(__file__).parent / "data" / "spectral"
PLANTED = DATA / "planted4_s12.npz"
ANCHOR = json.loads((DATA / "planted4_s12.json").read_text())["results"]["normalize_weights=True"]


def argv(tmp_path: Path, *extra, checkpoint: Path = PLANTED) -> list[str]:
    return [
        "--checkpoint",
        str(checkpoint),
        "--result_path",
        str(tmp_path / "r"),
        "--visualization_path",
        str(tmp_path / "v"),
        "--quiet",
        *extra,
    ]


def clusterability(tmp_path: Path, capsys, *extra) -> dict:
    rc, out, err = call_main(["--experiment", "clusterability", *argv(tmp_path, *extra)], capsys)
    assert rc == 0, err
    assert out.startswith("clusterability: n-cut")
    folder = out_folder(tmp_path / "r", "spectral_planted4_s12")
    return json.loads((folder / "clusterability.json").read_text())


def test_method_spectral_writes_modules_with_anchor_labels_and_ncut(tmp_path, capsys):
    rc, out, _ = call_main(
        ["--experiment", "module_detection", "--method", "spectral", *argv(tmp_path)], capsys
    )
    assert rc == 0 and "n-cut" in out
    folder = out_folder(tmp_path / "r", "spectral_planted4_s12")
    modules = json.loads((folder / "modules_spectral.json").read_text())
    assert modules["method"] == "spectral" and modules["n_modules"] == 4
    assert modules["ncut"] == pytest.approx(ANCHOR["K4"]["n_cut"], rel=1e-6)
    assert adjusted_rand_score(modules["partition"], ANCHOR["K4"]["labels"]) == 1.0
    names = {p.name for p in all_files(tmp_path)}
    assert {"modules_spectral.json", "network_spectral.graphml", "modules_spectral.png"} <= names


def test_clusterability_records_which_path_each_number_came_from(tmp_path, capsys):
    """The true n-cut is the anchors' call on both solvers; each shuffle's route is recorded, and the two
    solvers keep separate keys (a resumed run never mixes them)."""
    fast = clusterability(tmp_path / "f", capsys, "--num_shuffles", "3")
    exact = clusterability(tmp_path / "e", capsys, "--num_shuffles", "3", "--shuffle_solver", "exact")
    assert fast["shuffle_solver"] == "fast" and exact["shuffle_solver"] == "exact"
    assert fast["ncut_route"] == exact["ncut_route"] == "exact" and fast["ncut"] == exact["ncut"]
    assert fast["shuffles"]["layer"]["routes"] == ["fast-gram"] * 3
    assert fast["shuffles"]["layer"]["route_counts"] == {"fast-gram": 3}
    assert exact["shuffles"]["layer"]["routes"] == ["exact"] * 3 and fast["key"] != exact["key"]


def test_clusterability_outputs_and_workers_do_not_change_results(tmp_path, capsys):
    methods = ["--shuffle_method", "layer", "layer_nonzero_distribution", "--num_shuffles", "4"]
    one = clusterability(tmp_path / "a", capsys, *methods, "--workers", "1")
    two = clusterability(tmp_path / "b", capsys, *methods, "--workers", "2")
    assert one["ncut"] == pytest.approx(ANCHOR["K4"]["n_cut"], rel=1e-6)
    assert adjusted_rand_score(one["labels"], ANCHOR["K4"]["labels"]) == 1.0
    for method in ("layer", "layer_nonzero_distribution"):
        stats = one["shuffles"][method]
        assert stats["ncuts"] == two["shuffles"][method]["ncuts"] and len(stats["ncuts"]) == 4
        ncuts = np.array(stats["ncuts"])
        assert stats["mean"] == pytest.approx(ncuts.mean()) and stats["std"] == pytest.approx(ncuts.std())
        assert stats["p"] == pytest.approx((np.sum(ncuts <= one["ncut"]) + 1) / 5)
        assert stats["z"] == pytest.approx((one["ncut"] - ncuts.mean()) / ncuts.std(), rel=1e-6)
    picture = next((tmp_path / "a" / "v").rglob("clusterability.png"))
    assert picture.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert not list((tmp_path / "a").rglob("*.partial.json"))


def test_killed_run_resumes_from_partial_and_extends(tmp_path, capsys):
    first = clusterability(tmp_path, capsys, "--num_shuffles", "3")
    out_dir = out_folder(tmp_path / "r", "spectral_planted4_s12")
    # As if killed after two shuffles: a partial file holding shuffles 0 and 2 (0 marked to prove reuse).
    (out_dir / "clusterability.json").unlink()
    done = {"0": 123.0, "2": first["shuffles"]["layer"]["ncuts"][2]}
    (out_dir / "clusterability.partial.json").write_text(
        json.dumps({"key": first["key"], "done": {"layer": done}})
    )
    resumed = clusterability(tmp_path, capsys, "--num_shuffles", "3")
    assert resumed["new_shuffles"] == 1
    assert resumed["shuffles"]["layer"]["ncuts"] == [123.0, *first["shuffles"]["layer"]["ncuts"][1:]]
    extended = clusterability(tmp_path, capsys, "--num_shuffles", "5")
    assert (
        extended["new_shuffles"] == 2
        and extended["shuffles"]["layer"]["ncuts"][:3] == [123.0] + first["shuffles"]["layer"]["ncuts"][1:]
    )
    assert clusterability(tmp_path, capsys, "--num_shuffles", "3", "--force")["new_shuffles"] == 3


def test_partition_is_scored_as_given(tmp_path, capsys):
    given = tmp_path / "given.json"
    given.write_text(json.dumps({"partition": ANCHOR["K8"]["labels"]}))
    result = clusterability(tmp_path, capsys, "--partition", str(given), "--num_shuffles", "2")
    assert result["ncut"] == pytest.approx(ANCHOR["K8"]["n_cut"], rel=1e-6)
    assert result["n_clusters"] == 8 and result["labels"] == ANCHOR["K8"]["labels"]


def no_edges_network(tmp_path: Path) -> Path:
    z = dict(np.load(PLANTED))
    for i in range(3):
        z[f"mask{i}"] = np.zeros_like(z[f"mask{i}"])
    path = tmp_path / "empty.npz"
    np.savez(path, **z)
    return path


@pytest.mark.parametrize(
    "case, expected",
    [
        (["--n_clusters", "500"], "500 clusters"),
        (["--shuffle_method", "layer", "rows"], "unknown shuffle method 'rows'"),
        (["--partition", "WRONG"], "does not fit"),
        (["--checkpoint", "EMPTY"], "no edge"),
        (["--num_shuffles", "0"], "--num_shuffles"),
    ],
)
def test_bad_input_one_line_exit_2_nothing_written(tmp_path, capsys, case, expected):
    wrong = tmp_path / "wrong.json"
    wrong.write_text(json.dumps({"partition": [0, 1, 2]}))
    case = [
        str(wrong) if c == "WRONG" else str(no_edges_network(tmp_path)) if c == "EMPTY" else c for c in case
    ]
    for experiment in ("clusterability", "module_detection"):
        if experiment == "module_detection" and case[0] in (
            "--shuffle_method",
            "--partition",
            "--num_shuffles",
        ):
            continue
        rc, _, err = call_main(
            ["--experiment", experiment, "--method", "spectral", *argv(tmp_path), *case], capsys
        )
        assert rc == 2 and expected in one_error_line(err)
        assert all_files(tmp_path / "r") == [] and all_files(tmp_path / "v") == []


def test_spectral_sweep_matches_anchor_seed_sensitivity(tmp_path, capsys):
    """Seeds 0..4 at K = 4 and 8: the n-cuts and same-as-seed-0 flags the anchor recorded."""
    pruned = DATA / "pruned_s20.npz"
    anchor = json.loads((DATA / "pruned_s20.json").read_text())["results"]["normalize_weights=True"]
    extra = ["--n_clusters", "8", "4", "--stability_seeds", "5"]
    rc, out, _ = call_main(
        ["--experiment", "spectral_sweep", *argv(tmp_path, *extra, checkpoint=pruned)], capsys
    )
    assert rc == 0 and out.startswith("spectral_sweep: K 4/8 over 5 seeds")
    folder = out_folder(tmp_path / "r", "spectral_pruned_s20")
    rows = json.loads((folder / "spectral_sweep.json").read_text())["rows"]
    for row in rows:
        ref = anchor[f"K{row['n_clusters']}"]
        expected = [ref["n_cut"]] + [ref["seed_sensitivity"][str(s)]["n_cut"] for s in range(1, 5)]
        assert row["ncuts"] == pytest.approx(expected, rel=1e-6)
        same = [adjusted_rand_score(row["labels"][0], lab) == 1.0 for lab in row["labels"][1:]]
        assert same == [ref["seed_sensitivity"][str(s)]["same_partition_as_seed0"] for s in range(1, 5)]
    assert (folder / "spectral_sweep.csv").read_text().splitlines()[0].startswith("n_clusters,ncut_mean")
    assert next((tmp_path / "v").rglob("spectral_sweep.png")).stat().st_size > 0


def test_checkpoint_every_and_learning_curve(tmp_path, capsys):
    train = ["--experiment", "train", "--task", "digits_10way", "--arch", "64", "16", "10", "--loss", "CE"]
    train += ["--epochs", "2", "--batch_size", "128", "--lr", "0.003", "--checkpoint_every", "1"]
    assert call_main([*train, "--result_path", str(tmp_path / "runs"), "--quiet"], capsys)[0] == 0
    dense = next((tmp_path / "runs").rglob("dense"))
    assert sorted(p.name for p in (dense / "checkpoints").iterdir()) == [
        "epoch-0000.pt",
        "epoch-0001.pt",
        "epoch-0002.pt",
    ]
    curve = ["--experiment", "clusterability", "--num_shuffles", "2", "--workers", "1"]
    rc, out, _ = call_main([*curve, *argv(tmp_path, checkpoint=dense)], capsys)
    assert rc == 0 and out.startswith("clusterability curve: 3 checkpoints")
    result = json.loads(next((tmp_path / "r").rglob("clusterability_curve.json")).read_text())
    assert [row["epoch"] for row in result["rows"]] == [0, 1, 2]
    one = json.loads(next((tmp_path / "r").rglob("epoch-0001.clusterability.json")).read_text())
    assert one["ncut"] == result["rows"][1]["ncut"] and len(one["shuffles"]["layer"]["ncuts"]) == 2
    assert next((tmp_path / "v").rglob("clusterability_curve.png")).stat().st_size > 0
