"""Hostile inputs by kind: each test covers a kind of defect with several variants, not one input.

Every refusal must be exit code 2, one stderr line starting with "error:" that names the option or file, and
no file written. Kinds: sizes bounded before allocation, only regular files read, no ignored option, a run's
own task, locks gone after SIGINT, files validated, messages naming the culprit, a full disk."""

from __future__ import annotations

import json
import os
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import REPO, all_files, call_main, cli_env, one_error_line

TINY = ["--modularity", "4", "2", "4", "--arch", "4", "8", "4", "--epochs", "2", "--quiet"]
NETWORK = sorted((REPO / "tests" / "data" / "reference_networks").glob("*6-24-3*.npz"))[0]  # arch 6 24 3


def refused(argv, capsys, tmp_path, *names) -> str:
    """Run main(argv) with fresh output folders under tmp_path; assert the one-line refusal naming every
    entry of `names` and that nothing was written; returns the line."""
    out = tmp_path / "out"
    if "--result_path" not in argv:
        argv = [*argv, "--result_path", out / "r"]
    if "--visualization_path" not in argv:
        argv = [*argv, "--visualization_path", out / "v"]
    rc, stdout, err = call_main([str(a) for a in argv], capsys)
    line = one_error_line(err)
    assert rc == 2, err
    for name in names:
        assert str(name) in line, line
    assert all_files(out) == []
    return line


@pytest.fixture
def no_hang():
    """Fail instead of blocking forever (a FIFO opened for reading waits for a writer)."""

    def alarm(*_):
        raise TimeoutError("blocked: a special file was opened")

    old = signal.signal(signal.SIGALRM, alarm)
    signal.alarm(20)
    yield
    signal.alarm(0)
    signal.signal(signal.SIGALRM, old)


# ----------------------------------------------------------------- 1. sizes checked before allocation


@pytest.mark.parametrize(
    "argv, option",
    [
        (["--experiment", "train", "--table_repeats", "1000000000"], "--table_repeats"),
        (["--experiment", "train", "--epochs", "10000000000"], "--epochs"),
        (["--experiment", "train", "--arch", "4", "4000000000", "4"], "--arch"),
        (["--experiment", "train", "--arch", "4", "200000", "200000", "4"], "--arch"),
        (["--experiment", "train", "--batch_size", "100000000000"], "--batch_size"),
        (
            [
                "--experiment",
                "train",
                "--task",
                "digits",
                "--modularity",
                "128",
                "2",
                "20",
                "--arch",
                "128",
                "8",
                "20",
                "--images_per_pair",
                "2000000000",
            ],
            "--images_per_pair",
        ),  # fmt: skip
        (["--experiment", "generate_task", "--modularity", "60", "2", "4"], "--modularity"),
        (
            [
                "--experiment",
                "lesion",
                "--checkpoint",
                NETWORK,
                "--num_shuffles",
                "10000000000",
                "--modularity",
                "6",
                "3",
                "3",
                "3",
            ],
            "--num_shuffles",
        ),  # fmt: skip
        (
            [
                "--experiment",
                "module_detection",
                "--method",
                "newman",
                "--checkpoint",
                NETWORK,
                "--mc_steps",
                "100000000000",
            ],
            "--mc_steps",
        ),  # fmt: skip
        (
            [
                "--experiment",
                "compare_partitions",
                "--partitions",
                "a.json",
                "b.json",
                "--n_shuffle",
                "1000000000000",
            ],
            "--n_shuffle",
        ),  # fmt: skip
        (["--experiment", "sculpt", "--seeds", *map(str, range(2000))], "--seeds"),
        (
            ["--experiment", "clusterability", "--checkpoint", NETWORK, "--num_shuffles", "99999999999"],
            "--num_shuffles",
        ),  # fmt: skip
    ],
)
def test_sizes_from_options_are_bounded_before_anything_runs(argv, option, capsys, tmp_path):
    refused(argv, capsys, tmp_path, option)


def test_table_repeats_are_checked_against_memory_not_tried(capsys, tmp_path, monkeypatch):
    import utils.limits

    monkeypatch.setattr(utils.limits, "memory_budget", lambda: 1 << 20)  # a 1 MiB machine
    line = refused(["--experiment", "train", *TINY, "--table_repeats", "100000"], capsys, tmp_path)
    assert "--table_repeats" in line and "MiB" in line


def _graph_npz(path: Path, **changes) -> Path:
    arrays = {
        "arch": np.array([4, 3, 2]),
        "edge_source": np.array([0, 1, 4]),
        "edge_target": np.array([4, 5, 7]),
        "edge_weight": np.array([1.0, 2.0, 3.0]),
        "bias": np.zeros(9),
    }
    arrays.update(changes)
    arrays = {k: v for k, v in arrays.items() if v is not None}
    np.savez(path, **arrays)
    return path


@pytest.mark.parametrize(
    "changes",
    [
        {"arch": np.array([4, 2400000000, 2]), "bias": None},  # per-unit arrays would be 18 GB
        {"arch": np.array([4, 2400000000, 2])},  # bias length says otherwise
        {"arch": np.array([4, 300000, 300000, 2]), "bias": None},  # dense weights would not fit
    ],
)
def test_arch_stated_in_a_graph_file_is_checked_before_allocation(changes, capsys, tmp_path):
    path = _graph_npz(tmp_path / "g.npz", **changes)
    refused(["--experiment", "module_detection", "--checkpoint", path], capsys, tmp_path, path)


def test_arch_stated_in_an_edgelist_header_is_checked(capsys, tmp_path):
    path = tmp_path / "g.edgelist"
    path.write_text("# arch 4 900000000 900000000 2\nL0_0 L1_0 1.0\nL1_0 L2_0 1.0\nL2_0 L3_0 1.0\n")
    refused(["--experiment", "module_detection", "--checkpoint", path], capsys, tmp_path, path)


def test_a_function_graph_with_too_many_inputs_is_refused(capsys, tmp_path):
    graph = json.loads((REPO / "datasets" / "graphs" / "exemplar" / "4-2-4.json").read_text())
    graph["n_inputs"], graph["modularity"][0] = 64, 64
    path = tmp_path / "big.json"
    path.write_text(json.dumps(graph))
    rc, _, err = call_main(["--experiment", "generate_task", "--graph", path, "--dataset_path",
                            tmp_path / "ds"], capsys)  # fmt: skip
    assert rc == 2 and not (tmp_path / "ds").exists()
    assert "n_inputs" in one_error_line(err)


def test_an_mnist_file_that_inflates_beyond_its_header_is_not_inflated(tmp_path):
    import gzip

    from utils.errors import SculptError
    from utils.tasks.idx import read_idx

    header = (0x0803).to_bytes(4, "big") + b"".join(int(d).to_bytes(4, "big") for d in (2, 28, 28))
    bomb = tmp_path / "train-images-idx3-ubyte.gz"
    bomb.write_bytes(gzip.compress(header + bytes(50_000_000)))  # 50 MB of zeros behind a 1.5 KB header
    with pytest.raises(SculptError, match="header says shape"):
        read_idx(bomb, 3)
    huge = tmp_path / "t10k-images-idx3-ubyte.gz"
    claim = (0x0803).to_bytes(4, "big") + b"".join(int(d).to_bytes(4, "big") for d in (2**31, 2**16, 2**16))
    huge.write_bytes(gzip.compress(claim + bytes(100)))
    with pytest.raises(SculptError, match="MNIST file"):
        read_idx(huge, 3)


# ----------------------------------------------------------------------- 2. only regular files are read


def _special(kind: str, path: Path) -> Path:
    if kind == "fifo":
        os.mkfifo(path)
    elif kind == "devzero":
        path.symlink_to("/dev/zero")
    else:
        path.mkdir()
    return path


@pytest.mark.parametrize("kind", ["fifo", "devzero", "folder"])
@pytest.mark.parametrize(
    "where",
    ["checkpoint", "partition", "dataset", "jobs_file", "input_batch", "graph", "structure", "partitions"],
)
def test_special_files_are_refused_at_once(where, kind, capsys, tmp_path, no_hang):
    names = {"dataset": "4-2-4.json", "graph": "g.json", "structure": "s.edgelist", "checkpoint": "m.pt",
             "input_batch": "b.npz", "partition": "modules.json", "jobs_file": "jobs.txt",
             "partitions": "a.json"}  # fmt: skip
    folder = tmp_path / "in"
    folder.mkdir()
    path = _special(kind, folder / names[where])
    argv = {
        "checkpoint": ["--experiment", "module_detection", "--checkpoint", path],
        "partition": [
            "--experiment",
            "export_graph",
            "--checkpoint",
            NETWORK,
            "--partition",
            path,
            "--output",
            tmp_path / "out" / "x.graphml",
        ],  # fmt: skip
        "dataset": ["--experiment", "train", *TINY, "--dataset_path", folder],
        "jobs_file": ["--experiment", "sweep", "--jobs_file", path],
        "input_batch": [
            "--experiment",
            "module_detection",
            "--method",
            "newman",
            "--checkpoint",
            NETWORK,
            "--input_batch",
            path,
        ],  # fmt: skip
        "graph": ["--experiment", "generate_task", "--graph", path, "--dataset_path", tmp_path / "out"],
        "structure": ["--experiment", "train", "--structure", path, "--epochs", "1"],
        "partitions": [
            "--experiment",
            "compare_partitions",
            "--partitions",
            path,
            path,
            "--out",
            tmp_path / "out" / "cmp",
        ],  # fmt: skip
    }[where]
    start = time.perf_counter()
    line = refused(argv, capsys, tmp_path, path)
    assert time.perf_counter() - start < 15
    words = {"fifo": "named pipe", "devzero": "device", "folder": "folder"}[kind]
    assert words in line


def test_a_file_far_larger_than_such_files_is_refused_before_reading(tmp_path, monkeypatch):
    import utils.files
    from utils.errors import SculptError

    big = tmp_path / "modules.json"
    big.write_text(json.dumps({"partition": [0] * 1000}))
    monkeypatch.setattr(utils.files, "memory_budget", lambda: 1600)  # text files up to 100 bytes
    with pytest.raises(SculptError, match="larger than"):
        utils.files.read_json(big, "partition file")


# ------------------------------------------------------------------------------ 3. no option is ignored


@pytest.mark.parametrize(
    "argv, option",
    [
        (["--experiment", "train", "--seeds", "1", "2"], "--seeds"),
        (["--experiment", "train", "--checkpoint", NETWORK], "--checkpoint"),
        (["--experiment", "train", "--n_clusters", "3"], "--n_clusters"),
        (["--experiment", "train", "--pruning_gradient", "2.5"], "--pruning_gradient"),
        (
            [
                "--experiment",
                "prune",
                "--prune_units",
                "1",
                "--unit_pruning_gradient",
                "50",
                "--pruning_gradient",
                "2.5",
            ],
            "--pruning_gradient",
        ),  # fmt: skip
        (["--experiment", "module_detection", "--checkpoint", NETWORK, "--mc_steps", "10"], "--mc_steps"),
        (["--experiment", "module_detection", "--checkpoint", NETWORK, "--lr", "0.1"], "--lr"),
        (
            [
                "--experiment",
                "module_detection",
                "--method",
                "spectral",
                "--checkpoint",
                NETWORK,
                "--mm_threshold",
                "0.3",
            ],
            "--mm_threshold",
        ),  # fmt: skip
        (["--experiment", "export_graph", "--checkpoint", NETWORK, "--num_shuffles", "5"], "--num_shuffles"),
        (["--experiment", "compare_partitions", "--partitions", "a", "b", "--epochs", "3"], "--epochs"),
        (["--experiment", "summarize", "--seed", "3"], "--seed"),
        (["--experiment", "sweep", "--jobs_file", "j", "--arch", "4", "8", "4"], "--arch"),
        # options of another task or model family
        (
            [
                "--experiment",
                "train",
                "--task",
                "digits",
                "--modularity",
                "128",
                "2",
                "20",
                "--arch",
                "128",
                "8",
                "20",
                "--table_repeats",
                "5",
            ],
            "--table_repeats",
        ),  # fmt: skip
        (["--experiment", "train", "--images_per_pair", "50"], "--images_per_pair"),
        (["--experiment", "train", "--mnist_path", "somewhere"], "--mnist_path"),
        (["--experiment", "train", "--task", "mnist_10way", "--modularity", "4", "2", "4"], "--modularity"),
        (["--experiment", "train", "--cnn", "conv:4:3"], "--cnn"),
        (
            [
                "--experiment",
                "train",
                "--model",
                "CNN",
                "--cnn",
                "conv:4:3",
                "--task",
                "digits_10way",
                "--loss",
                "CE",
                "--arch",
                "64",
                "8",
                "10",
            ],
            "--arch",
        ),  # fmt: skip
    ],
)
def test_an_option_the_experiment_does_not_use_is_an_error(argv, option, capsys, tmp_path):
    line = refused(argv, capsys, tmp_path, option)
    assert "not used" in line or "takes no" in line  # train names the experiment that does take it


@pytest.mark.parametrize(
    "argv, option",
    [
        (["--experiment", "train", "--gpu", "7"], "--gpu 7"),
        (["--experiment", "train", "--seed", "-1"], "--seed"),
        (["--experiment", "train", "--seed", str(2**40)], "--seed"),
        (
            [
                "--experiment",
                "module_detection",
                "--unit_pruning_gradient",
                "70",
                "--which_unit_pruning_gradient",
                "5",
            ],
            "--which_unit_pruning_gradient 5",
        ),  # fmt: skip
        (
            ["--experiment", "module_detection", "--which_unit_pruning_gradient", "1"],
            "--which_unit_pruning_gradient",
        ),  # fmt: skip
        (
            [
                "--experiment",
                "module_detection",
                "--method",
                "spectral",
                "--checkpoint",
                NETWORK,
                "--n_clusters",
                "3",
                "2",
            ],
            "--n_clusters 3 2",
        ),  # fmt: skip
        (["--experiment", "module_detection", "--pruning_gradient", "2.5", "1.0"], "--pruning_gradient"),
        (["--experiment", "train", "--gamma", "1e300"], "--gamma"),
        (["--experiment", "train", "--lr", "1e39"], "--lr"),
    ],
)
def test_a_value_out_of_range_is_an_error_naming_it(argv, option, capsys, tmp_path):
    refused(argv, capsys, tmp_path, option)


def test_every_option_is_used_by_some_experiment():
    from run.option_rules import used_options
    from run.parser import EXPERIMENTS, build_parser, parse_config

    used = set()
    config = parse_config(["--dry_run"])
    for experiment in EXPERIMENTS:
        for checkpoint in (None, "x"):
            for method in ("sculpt", "spectral", "newman"):
                config.experiment, config.checkpoint, config.method = experiment, checkpoint, method
                used |= used_options(config)
    assert {a.dest for a in build_parser()._actions} - {"help"} - used == set()


def _readme_commands() -> list[list[str]]:
    text = (REPO / "README.md").read_text()
    commands = []
    for block in text.split("```")[1::2]:
        joined = block.replace("\\\n", " ")
        for line in joined.splitlines():
            if "python3 main.py" in line and not any(c in line for c in ("...", "<", "[")):
                words = shlex.split(line.split("python3 main.py", 1)[1].split("#")[0])
                commands.append(words)
    return commands


def _shell_commands() -> list[list[str]]:
    commands = []
    for script in ("exemplar.sh", "digits.sh", "input_overlap.sh"):
        out = subprocess.run(["bash", str(REPO / "shell" / script), "--list", "--quick"], capture_output=True,
                             text=True, cwd=REPO, timeout=60)  # fmt: skip
        commands += [
            shlex.split(line.split("main.py", 1)[1]) for line in out.stdout.splitlines() if "main.py" in line
        ]
    return commands


def test_published_and_documented_command_lines_still_parse():
    from run.parser import parse_config

    commands = _readme_commands() + _shell_commands()
    assert len(commands) > 10
    for words in commands:
        parse_config([*words, "--dry_run"])  # raises ConfigError on an option the experiment does not use


# ------------------------------------------------------------------------------ 4. a run's own task


@pytest.fixture(scope="module")
def run_414(tmp_path_factory):
    """A trained 4-1-4 run and a spectral partition of its dense network."""
    import main

    root = tmp_path_factory.mktemp("r414")
    assert main.main(["--experiment", "train", "--modularity", "4", "1", "4", "--arch", "4", "8", "4",
                      "--epochs", "3", "--quiet", "--result_path", str(root / "r")]) == 0  # fmt: skip
    model = next((root / "r").rglob("dense/model.pt"))
    assert main.main(["--experiment", "module_detection", "--method", "spectral", "--n_clusters", "2",
                      "--checkpoint", str(model), "--result_path", str(root / "m"), "--visualization_path",
                      str(root / "v"), "--quiet"]) == 0  # fmt: skip
    return model, next((root / "m").rglob("modules_spectral.json"))


def test_lesion_of_a_checkpoint_uses_its_runs_task(run_414, tmp_path, capsys):
    model, modules = run_414
    argv = ["--experiment", "lesion", "--checkpoint", model, "--partition", modules, "--num_shuffles", "3",
            "--quiet"]  # fmt: skip
    outputs = ["--result_path", tmp_path / "r", "--visualization_path", tmp_path / "v"]
    rc, _, err = call_main([*argv, *outputs], capsys)
    assert rc == 0, err
    result = json.loads(next((tmp_path / "r").rglob("lesion.json")).read_text())
    assert result["task"]["modularity"] == [4, 1, 4]
    assert min(result["base_accuracy"]) > 50  # the 4-1-4 test set, not the default task at chance
    line = refused([*argv, "--modularity", "4", "2", "4"], capsys, tmp_path, "--modularity", "4 1 4")
    assert "contradicts" in line


def test_a_checkpoint_without_its_config_needs_the_task_named(run_414, tmp_path, capsys):
    import shutil

    model, modules = run_414
    lone = tmp_path / "lone.pt"
    shutil.copy(model, lone)
    refused(["--experiment", "lesion", "--checkpoint", lone, "--partition", modules, "--num_shuffles", "3"],
            capsys, tmp_path, "--modularity")  # fmt: skip


def test_a_runs_config_with_wrong_types_is_named(run_414, tmp_path, capsys):
    import shutil

    model, modules = run_414
    folder = tmp_path / "run"
    shutil.copytree(model.parent, folder)
    saved = json.loads((folder / "config.json").read_text())
    saved["modularity"] = "four"
    (folder / "config.json").write_text(json.dumps(saved))
    refused(["--experiment", "lesion", "--checkpoint", folder / "model.pt", "--partition", modules,
             "--num_shuffles", "3"], capsys, tmp_path, "config.json", "modularity")  # fmt: skip


def test_associations_summary_names_a_config_with_wrong_types(tmp_path, capsys):
    run = tmp_path / "runs" / "a"
    (run / "associations").mkdir(parents=True)
    (run / "associations" / "comparison.json").write_text(
        json.dumps({"Q": {"forward_cov": [0.1]}, "layers": {}})
    )
    (run / "config.json").write_text(json.dumps({"dropout": "lots", "seed": 0}))
    rc, _, err = call_main(
        ["--experiment", "associations_summary", "--result_path", tmp_path / "runs"], capsys
    )
    assert rc == 2 and "config.json" in one_error_line(err) and "dropout" in err


# ---------------------------------------------------------------------------- 5. locks gone on SIGINT


def test_sigint_leaves_no_lock(tmp_path):
    proc = subprocess.Popen(
        [
            sys.executable,
            "main.py",
            "--experiment",
            "train",
            "--arch",
            "4",
            "64",
            "64",
            "4",
            "--epochs",
            "2000",
            "--quiet",
            "--result_path",
            str(tmp_path / "r"),
        ],  # fmt: skip
        cwd=REPO,
        env=cli_env(),
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.time() + 60
    while not list((tmp_path / "r").rglob(".lock")) and time.time() < deadline:
        time.sleep(0.1)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130 and "interrupted" in err
    assert not list(tmp_path.rglob(".lock"))


# --------------------------------------------------------------------------- 6. input files validated


@pytest.mark.parametrize(
    "changes, words",
    [
        ({"edge_source": np.array([0, 0, 4]), "edge_target": np.array([4, 4, 7])}, "appears twice"),
        ({"edge_source": np.array([0.0, 1.5, 4.0])}, "integers"),
        ({"edge_weight": np.array([1.0, 2.0])}, "length"),
        ({"bias": np.zeros(5)}, "bias"),
        ({"edge_weight": np.array([1.0, np.nan, 2.0])}, "NaN"),
        ({"arch": np.array([4.0, 3.0, 2.0])}, "integers"),
    ],
)
def test_graph_npz_contents_are_validated(changes, words, capsys, tmp_path):
    path = _graph_npz(tmp_path / "g.npz", **changes)
    line = refused(["--experiment", "module_detection", "--checkpoint", path], capsys, tmp_path, path)
    assert words in line


@pytest.mark.parametrize(
    "text, words",
    [
        ("L0_0 L1_0 1.0\nL0_0 L1_0 99.0\nL1_0 L2_0 1.0\n", "appears twice"),  # no header: networkx path
        ("# arch 2 1 1\nL0_0 L1_0 1.0\nL1_0 L2_0 1.0\nL1_0 L2_0 2.0\n", "appears twice"),
        ("# arch 2 1.5 1\nL0_0 L1_0 1.0\n", "cannot read"),
        ("L0_0 L1_0 1.0 extra words\n", "not 'source target"),
    ],
)
def test_edge_lists_are_validated_line_by_line(text, words, capsys, tmp_path):
    path = tmp_path / "g.edgelist"
    path.write_text(text)
    line = refused(["--experiment", "module_detection", "--checkpoint", path], capsys, tmp_path, path)
    assert words in line


def test_graphml_float_layers_are_refused(capsys, tmp_path):
    import networkx as nx

    graph = nx.DiGraph()
    graph.add_node("a", layer=0.0, index=0)
    graph.add_node("b", layer=1.5, index=0)
    graph.add_node("c", layer=2.0, index=0)
    graph.add_edge("a", "b", weight=1.0)
    graph.add_edge("b", "c", weight=1.0)
    path = tmp_path / "g.graphml"
    nx.write_graphml(graph, path)
    refused(["--experiment", "module_detection", "--checkpoint", path], capsys, tmp_path, path, "layer")


@pytest.mark.parametrize("labels", [[10**30] + [0] * 32, [1.5] + [0] * 32, [True] + [0] * 32, [0] * 5])
def test_partition_labels_must_be_small_integers_of_the_network(labels, capsys, tmp_path):
    path = tmp_path / "modules.json"
    path.write_text(json.dumps({"partition": labels, "arch": [6, 24, 3] if len(labels) == 33 else [5]}))
    refused(["--experiment", "export_graph", "--checkpoint", NETWORK, "--partition", path, "--output",
             tmp_path / "out" / "x.graphml"], capsys, tmp_path, path)  # fmt: skip


@pytest.mark.parametrize(
    "line, words",
    [
        ("--experiment train --dataset_path 'oops", "no closing quotation"),
        ('--experiment train --arch "4 8 4', "no closing quotation"),
        ("--experiment sweep --jobs_file other.txt", "another sweep"),
        ("--experiment=sweep --jobs_file other.txt", "another sweep"),
    ],
)
def test_jobs_files_are_validated_and_never_nest(line, words, capsys, tmp_path):
    jobs = tmp_path / "jobs.txt"
    jobs.write_text("--experiment train --epochs 1\n" + line + "\n")
    text = refused(["--experiment", "sweep", "--jobs_file", jobs], capsys, tmp_path, jobs, ":2")
    assert words in text


def test_a_sweep_started_by_a_sweep_job_refuses(capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("SCULPT_IN_SWEEP", "1")
    jobs = tmp_path / "jobs.txt"
    jobs.write_text("--experiment train --epochs 1\n")
    refused(["--experiment", "sweep", "--jobs_file", jobs], capsys, tmp_path, "sweep")


# ----------------------------------------------------------------------- 7. messages name the culprit


def test_a_folder_given_as_a_file_is_called_a_folder(capsys, tmp_path):
    folder = tmp_path / "net"
    folder.mkdir()
    line = refused(["--experiment", "module_detection", "--checkpoint", folder], capsys, tmp_path, folder)
    assert "is a folder" in line


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_a_non_finite_input_batch_names_the_file_and_nan(bad, capsys, tmp_path):
    rows = np.zeros((8, 6), np.float32)
    rows[3, 2] = bad
    path = tmp_path / "batch.npz"
    np.savez(path, inputs=rows)
    line = refused(["--experiment", "module_detection", "--method", "newman", "--checkpoint", NETWORK,
                    "--input_batch", path], capsys, tmp_path, path)  # fmt: skip
    assert "NaN" in line and "row 3" in line


def test_a_value_making_a_folder_name_too_long_is_named(capsys, tmp_path):
    structure = tmp_path / ("s" * 240 + ".edgelist")
    structure.write_text((REPO / "datasets" / "structures" / "skip-4-12-12-4.edgelist").read_text())
    refused(["--experiment", "train", "--structure", structure, "--epochs", "1"], capsys, tmp_path,
            "--structure", "255")  # fmt: skip


def test_a_huge_float_option_keeps_the_folder_name_short(capsys, tmp_path):
    from run.parser import parse_config
    from run.runs import dense_dir

    folder = dense_dir(parse_config(["--experiment", "train", "--l1", "1e30"]))
    assert max(len(part) for part in folder.parts) < 100 and "l1-1e+30" in str(folder)


def test_a_structure_whose_layers_do_not_fit_the_task_names_structure(capsys, tmp_path):
    path = tmp_path / "s.edgelist"
    path.write_text("L0_0 L1_0 1.0\nL0_1 L1_1 1.0\nL0_2 L1_2 1.0\nL1_0 L2_0 1.0\nL1_1 L2_1 1.0\n")
    line = refused(["--experiment", "train", "--structure", path, "--epochs", "1"], capsys, tmp_path,
                   "--structure", path)  # fmt: skip
    assert "--arch" not in line


@pytest.mark.parametrize(
    "argv, option",
    [
        (["--experiment", "compare_partitions", "--partitions", "A", "B", "--out", "FILE"], "--out"),
        (["--experiment", "export_graph", "--checkpoint", NETWORK, "--output", "FOLDER"], "--output"),
        (["--experiment", "export_graph", "--checkpoint", NETWORK, "--output", "FILE/x.graphml"], "--output"),
    ],
)
def test_output_file_options_are_checked_before_the_work(argv, option, capsys, tmp_path, monkeypatch):
    import run.compare_partitions
    import run.export_graph

    def never(*_):
        raise AssertionError("the work started")

    monkeypatch.setattr(run.compare_partitions, "compare_many", never, raising=False)
    monkeypatch.setattr(run.export_graph, "load_target", never)
    (tmp_path / "FILE").write_text("x")
    (tmp_path / "FOLDER").mkdir()
    names = {"FILE": tmp_path / "FILE", "FOLDER": tmp_path / "FOLDER", "A": NETWORK, "B": NETWORK}
    argv = [str(a).replace("FILE", str(names["FILE"])) if "FILE" in str(a) else names.get(a, a) for a in argv]
    refused(argv, capsys, tmp_path, option)


def test_export_beside_a_read_only_network_names_output(capsys, tmp_path):
    import shutil

    folder = tmp_path / "ro"
    folder.mkdir()
    shutil.copy(NETWORK, folder / "net.npz")
    folder.chmod(0o500)
    try:
        refused(["--experiment", "export_graph", "--checkpoint", folder / "net.npz"], capsys, tmp_path,
                "--output", folder)  # fmt: skip
    finally:
        folder.chmod(0o700)


def test_export_writes_beside_the_network_by_default(capsys, tmp_path):
    import shutil

    shutil.copy(NETWORK, tmp_path / "net.npz")
    rc, _, err = call_main(["--experiment", "export_graph", "--checkpoint", tmp_path / "net.npz",
                            "--result_path", tmp_path / "r"], capsys)  # fmt: skip
    assert rc == 0, err
    assert (tmp_path / "net.graphml").is_file() and not (tmp_path / "r").exists()


# ----------------------------------------------------------------------------------------- a full disk


def test_torch_save_on_a_full_disk_names_the_file_and_the_disk(tmp_path, monkeypatch):
    import torch

    import run.runs
    from run.runs import RunDir
    from utils.errors import OutputError

    def full(obj, path):
        Path(path).write_bytes(b"PK")
        raise RuntimeError("[enforce fail at inline_container.cc:626] . unexpected pos 128 vs 0")

    class NoSpace:
        f_bavail, f_frsize = 0, 4096

    monkeypatch.setattr(torch, "save", full)
    monkeypatch.setattr(run.runs.os, "statvfs", lambda _: NoSpace())
    with pytest.raises(OutputError, match=r"search_state\.pt: No space left on device .*full"):
        RunDir(tmp_path).save_torch("search_state.pt", {"x": 1})
    assert list(tmp_path.iterdir()) == []


def test_run_options_restating_a_checkpoints_run_are_accepted_contradictions_refused(
    run_414, tmp_path, capsys
):
    model, modules = run_414
    argv = ["--experiment", "lesion", "--checkpoint", model, "--partition", modules, "--num_shuffles", "3",
            "--quiet", "--epochs", "3", "--arch", "4", "8", "4"]  # fmt: skip
    rc, _, err = call_main(
        [*argv, "--result_path", tmp_path / "r", "--visualization_path", tmp_path / "v"], capsys
    )
    assert rc == 0, err  # the run's own values, restated
    line = refused([*argv, "--lr", "0.1"], capsys, tmp_path, "--lr 0.1", "0.05")
    assert "contradicts" in line


@pytest.mark.parametrize(
    "state",
    [
        {"layers.0.weight": "x"},
        {"layers.0.weight": np.zeros((3, 4), np.int64)},
        {"layers.0.weight": np.zeros((3, 4, 2), np.float32)},
    ],
)
def test_a_checkpoint_with_mistyped_arrays_names_the_entry(state, capsys, tmp_path):
    import torch

    path = tmp_path / "m.pt"
    torch.save({k: torch.as_tensor(v) if not isinstance(v, str) else v for k, v in state.items()}, path)
    refused(
        ["--experiment", "module_detection", "--checkpoint", path], capsys, tmp_path, path, "layers.0.weight"
    )


def test_an_explicit_modularity_that_disagrees_with_the_graph_is_refused(capsys, tmp_path):
    graph = REPO / "datasets" / "graphs" / "exemplar" / "4-2-4.json"
    for experiment in ("train", "generate_task"):
        argv = ["--experiment", experiment, "--graph", graph, "--modularity", "4", "1", "4"]
        refused([*argv, "--dataset_path", tmp_path / "out" / "ds"], capsys, tmp_path, "--modularity")
