"""Issue 11, hardening: every case below failed on main before the fix (traceback, silent fallback, endless
search, clobbered or misleading output). Each test names its case."""

from __future__ import annotations

import errno
import json
import math
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from run.parser import ConfigError, parse_config
from tests.conftest import DONE_WHEN, REPO, call_main, cli_env, one_error_line

TINY = [
    "--task", "boolean", "--modularity", "4", "2", "4", "--arch", "4", "8", "4",
    "--epochs", "2",
]  # fmt: skip
PRUNE = ["--prune_acc_threshold", "50"]  # pruning runs only: train refuses an option it does not use


# ------------------------------------------------------------------ 1. one line and exit 2, checked early


def test_result_path_that_is_a_file_is_one_line_before_any_work(tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("")
    rc, out, err = call_main(["--experiment", "train", *TINY, "--result_path", blocker / "sub"], capsys)
    assert rc == 2 and out == ""
    assert "--result_path" in one_error_line(err) and "is a file" in err


def test_picture_folder_that_is_a_file_fails_before_training(tmp_path, capsys):
    blocker = tmp_path / "pictures"
    blocker.write_text("")
    results = tmp_path / "results"
    argv = ["--experiment", "sculpt", *TINY, *PRUNE, "--unit_pruning_gradient", "50"]
    argv += ["--pruning_gradient", "50"]
    rc, out, err = call_main([*argv, "--result_path", results, "--visualization_path", blocker], capsys)
    assert rc == 2
    assert "--visualization_path" in one_error_line(err)
    assert not results.exists()  # nothing trained, nothing written


def test_read_only_result_path_is_one_line(tmp_path, capsys):
    folder = tmp_path / "ro"
    folder.mkdir()
    folder.chmod(0o500)
    try:
        rc, _, err = call_main(["--experiment", "train", *TINY, "--result_path", folder], capsys)
    finally:
        folder.chmod(0o700)
    assert rc == 2 and "not writable" in one_error_line(err)


def test_disk_full_while_writing_names_the_path_and_operation(tmp_path, capsys, monkeypatch):
    import utils.atomic_io

    def full(src, dst):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(utils.atomic_io.os, "replace", full)
    rc, out, err = call_main(
        ["--experiment", "train", *TINY, "--quiet", "--result_path", tmp_path / "r"], capsys
    )
    line = one_error_line(err)
    assert rc == 2 and "cannot replace" in line and "No space left on device" in line
    assert "config.json" in line  # the first file written
    assert not [p for p in (tmp_path / "r").rglob("*") if p.is_file()]  # no temp file left behind


# --------------------------------------------------------------- 2. two processes writing the same folder


def test_stale_temps_spare_a_live_writer(tmp_path):
    from run.runs import RunDir

    live = tmp_path / f".model.pt.{os.getppid()}.abcd1234.tmp.pt"  # our parent: alive
    dead_pid = 2**22 + 12345  # above the default pid_max
    dead = tmp_path / f".model.pt.{dead_pid}.abcd1234.tmp.pt"
    old_style = tmp_path / ".metrics.json.x1y2z3.tmp.json"  # no pid: from before pids were recorded
    for path in (live, dead, old_style):
        path.write_text("x")
    RunDir(tmp_path).clean_stale_temps()
    assert live.exists() and not dead.exists() and not old_style.exists()


HOLD_LOCK = """
import sys, time
sys.path.insert(0, {repo!r})
from run.runs import RunDir
with RunDir({path!r}).lock():
    print("locked", flush=True)
    time.sleep({seconds})
"""


def _hold_lock(path: Path, seconds: float) -> subprocess.Popen:
    code = HOLD_LOCK.format(repo=str(REPO), path=str(path), seconds=seconds)
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "locked"
    return proc


def test_run_lock_waits_for_the_holder_or_says_busy(tmp_path):
    from run.runs import RunDir
    from utils.errors import RunBusyError

    run = RunDir(tmp_path / "run")
    holder = _hold_lock(run.path, 1.0)
    with pytest.raises(RunBusyError, match=f"process {holder.pid}"), run.lock(wait=False):
        pass
    told = []
    start = time.perf_counter()
    with run.lock(on_wait=told.append):
        waited = time.perf_counter() - start
    holder.wait()
    assert waited > 0.3 and len(told) == 1 and "busy" in told[0]
    assert not (run.path / ".lock").exists()


def _launch_prune(result_path: Path) -> subprocess.Popen:
    argv = [*TINY, *PRUNE, "--experiment", "prune", "--prune_units", "1", "--unit_pruning_gradient", "50"]
    return subprocess.Popen(
        [sys.executable, "main.py", *argv, "--quiet", "--result_path", str(result_path)],
        cwd=REPO,
        env=cli_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _finished_runs(root: Path) -> dict:
    found = {}
    for metrics in sorted(root.rglob("metrics.json")):
        data = json.loads(metrics.read_text())
        data.pop("seconds")
        state = torch.load(metrics.parent / "model.pt", map_location="cpu", weights_only=True)
        found[str(metrics.parent.relative_to(root))] = (data, {k: v.tolist() for k, v in state.items()})
    return found


def test_three_identical_prunes_at_once_equal_one_run(tmp_path):
    """The short version of benchmarks/concurrent_prune.py (which repeats this 20 times)."""
    single = _launch_prune(tmp_path / "single")
    assert single.wait(timeout=120) == 0, single.communicate()[1]
    together = [_launch_prune(tmp_path / "together") for _ in range(3)]
    for proc in together:
        code = proc.wait(timeout=180)
        out, err = proc.communicate()
        assert code == 0 and "Traceback" not in err, err
        assert len(out.strip().splitlines()) == 1  # the result line, even with --quiet
    assert _finished_runs(tmp_path / "together") == _finished_runs(tmp_path / "single")
    assert not [p for p in (tmp_path / "together").rglob("*") if ".tmp" in p.name or p.name == ".lock"]


# ------------------------------------------------------------------------- 3. no endless or wasted search


def _tiny_model():
    from models.mlp import MLP

    torch.manual_seed(7)
    return MLP([4, 8, 4])  # 64 weights: one edge is 1.5625 %


class CountingRetrain:
    """Fake retrain that always passes; fails the test instead of looping forever."""

    def __init__(self, limit=40):
        self.calls, self.limit = 0, limit

    def __call__(self, model):
        self.calls += 1
        assert self.calls <= self.limit, "the search retrained the same network again and again"
        return {"test_accuracy": 100.0, "test_loss": 0.1}


def _plan(make_masks, step=25.0):
    from utils.pruning import SearchPlan, schedule_target, weights_pruned_percent

    return SearchPlan(
        target=lambda i: schedule_target("linear", i, step, None),
        make_masks=make_masks,
        pruned_percent=weights_pruned_percent,
        min_step=100.0 / 64,
        threshold=100.0,
        kind="edges",
    )


def test_a_cut_that_masks_nothing_new_is_skipped_and_never_repeats():
    from utils.pruning import search

    def nothing_new(model, percent):  # e.g. NaN scores: no comparison is true, nothing is cut
        return [layer.weight_mask.clone() for layer in model.layers], [
            layer.bias_mask.clone() for layer in model.layers
        ]

    model = _tiny_model()
    retrain = CountingRetrain()
    state = search(model, _plan(nothing_new), 25.0, retrain)
    assert state.done and retrain.calls == 0
    targets = [e["target_percent"] for e in state.history if e["target_percent"] < 100]
    assert targets == sorted(set(targets))  # every target new: the search always moves on
    assert len(state.history) < 20
    assert all("skipped" in e for e in state.history)


def test_tied_scores_pruned_past_the_next_targets_do_not_end_the_search():
    """The arch 4 48 48 48 4 case: the first cut (target 10 %) removes every tied (zero) weight, 50 % of
    them; the published search then keeps following its schedule (20, 30, 40, 50 % mask nothing new) and
    prunes on from 60 %. Before the fix it stopped at 50 %."""
    from utils.pruning import edge_masks, search

    model = _tiny_model()
    with torch.no_grad():
        for layer in model.layers:
            layer.weight[:, : layer.weight.shape[1] // 2] = 0.0  # half of all weights tie at zero
    retrain = CountingRetrain()
    state = search(model, _plan(edge_masks, step=10.0), 10.0, retrain)
    first = state.history[0]
    assert first["target_percent"] == 10.0 and first["pruned_percent"] == 50.0 and first["accepted"]
    skipped = [e["target_percent"] for e in state.history if "skipped" in e and e["target_percent"] < 100]
    assert skipped[:4] == [20.0, 30.0, 40.0, 50.0]
    assert model.density() < 45.0  # pruned on past the tie
    assert retrain.calls == len([e for e in state.history if "test_accuracy" in e])


@pytest.mark.parametrize("option", ["--lr", "--weight_decay", "--gamma", "--prune_acc_threshold"])
@pytest.mark.parametrize("value", ["nan", "inf"])
def test_non_finite_options_are_errors(option, value):
    with pytest.raises(ConfigError, match=f"{option} must be a finite number"):
        parse_config(["--experiment", "prune", option, value])


def test_a_nan_training_loss_is_an_error_naming_it():
    from run.common import prepare
    from utils.errors import NumericalError
    from utils.training import train

    config = parse_config([*TINY])
    ctx = prepare(config)
    model = _tiny_model()
    with torch.no_grad():
        model.layers[0].weight[0, 0] = math.nan
    with pytest.raises(NumericalError, match="training loss became nan"):
        train(model, ctx.data, config, torch.Generator().manual_seed(0))


def test_a_diverging_learning_rate_is_an_error_naming_it():
    from run.common import prepare
    from utils.errors import NumericalError
    from utils.training import train

    with pytest.raises(ConfigError, match="--gamma 1e.30 grows --lr"):  # refused before training
        parse_config([*TINY, "--gamma", "1e30", "--epochs", "3"])
    config = parse_config([*TINY, "--epochs", "3"])
    config.gamma = 1e308  # the run-time guard behind it
    with pytest.raises(NumericalError, match="learning rate became 5e.* in epoch 2"):
        train(_tiny_model(), prepare(config).data, config, torch.Generator().manual_seed(0))


def test_a_checkpoint_with_nan_weights_is_an_input_error(tmp_path):
    from run.runs import load_checkpoint
    from utils.errors import InputError

    state = _tiny_model().state_dict()
    state["layers.1.weight"][0, 0] = math.inf
    torch.save(state, tmp_path / "model.pt")
    with pytest.raises(InputError, match="layers.1.weight holds NaN or inf"):
        load_checkpoint(tmp_path / "model.pt")


# --------------------------------------------------------------------------------- 4. no silent fallbacks


def test_abbreviated_options_are_refused():
    with pytest.raises(ConfigError, match="--epoch"):
        parse_config(["--epoch", "5"])


def test_dataset_path_that_is_a_file_is_an_error(capsys):
    rc, _, err = call_main(
        [*DONE_WHEN, "--dataset_path", "datasets/exemplar/4-2-4.json", "--dry_run"], capsys
    )
    assert rc == 2 and "is a file" in one_error_line(err)


def test_mistyped_dataset_path_names_the_run_after_the_shipped_graph(tmp_path):
    from run.runs import dense_dir

    config = parse_config([*DONE_WHEN, "--dataset_path", str(tmp_path / "exmplar"), "--result_path", "r"])
    assert dense_dir(config).parts[1] == "boolean-exemplar"


def test_mistyped_dataset_path_is_said_on_stderr(tmp_path, capsys):
    from run.common import prepare

    prepare(parse_config([*TINY, "--dataset_path", str(tmp_path / "exmplar")]))
    assert "does not exist" in capsys.readouterr().err


@pytest.mark.skipif(torch.cuda.is_available(), reason="CUDA present: --gpu 1 uses it")
def test_gpu_without_cuda_says_so(capsys):
    from run.common import prepare

    ctx = prepare(parse_config([*TINY, "--gpu", "1"]))
    assert ctx.device.type == "cpu"
    assert "CUDA is not available" in capsys.readouterr().err


# ---------------------------------------------------------------------- 5. results that cannot clobber


def test_checkpoints_with_the_same_name_get_their_own_folders(capsys):
    folders = []
    for checkpoint in ("a/model.pt", "b/model.pt"):
        rc, out, _ = call_main(
            ["--experiment", "module_detection", "--checkpoint", checkpoint, "--dry_run"], capsys
        )
        assert rc == 0
        folders.append(json.loads(out)["run_folders"]["modules"])
    assert folders[0] != folders[1]
    assert Path(folders[0]).name.startswith("a_model-") and Path(folders[1]).name.startswith("b_model-")


# --------------------------------------------------------------------------------- 6. say what happened


def test_quiet_keeps_the_result_line_and_a_reused_run_says_so(tmp_path, capsys):
    argv = ["--experiment", "train", *TINY, "--result_path", tmp_path, "--quiet"]
    rc, out, _ = call_main(argv, capsys)
    assert rc == 0 and len(out.splitlines()) == 1 and "test accuracy" in out
    rc, out, _ = call_main(argv, capsys)
    assert rc == 0 and len(out.splitlines()) == 1
    assert "reused the finished run" in out and "--force" in out
    rc, out, _ = call_main([*argv[:-1], "--experiment", "prune", "--prune_units", "1", "--quiet",
                            "--unit_pruning_gradient", "50", *PRUNE], capsys)  # fmt: skip
    assert rc == 0 and out.startswith("units step 50.0: test accuracy") and len(out.splitlines()) == 1


def test_dry_run_prints_the_run_folders(capsys):
    rc, out, _ = call_main([*DONE_WHEN, "--experiment", "prune", "--prune_units", "1",
                            "--unit_pruning_gradient", "70", "50", "--dry_run"], capsys)  # fmt: skip
    folders = json.loads(out)["run_folders"]
    assert rc == 0 and sorted(folders) == ["units step 50.0", "units step 70.0"]
    assert folders["units step 70.0"].endswith(
        "seed-0/units/activation_gradient_product_linear_step-70_acc-100"
    )


@pytest.mark.parametrize("task,arch,folder", [("digits_10way", "64 16 10", "digits_10way/64-10")])
def test_ten_way_run_folders_carry_the_real_modularity(task, arch, folder):
    from run.runs import dense_dir

    config = parse_config(["--task", task, "--arch", *arch.split(), "--loss", "CE", "--result_path", "r"])
    assert folder in str(dense_dir(config))
    config = parse_config(["--task", "mnist_10way", "--arch", "784", "16", "10", "--result_path", "r"])
    assert "mnist_10way/784-10/" in str(dense_dir(config))


# ------------------------------------------------------------------------ 7. pictures a researcher can cite


def _lab(colour):
    """sRGB -> CIE Lab (D65), for colour distances."""
    import numpy as np
    from matplotlib.colors import to_rgb

    c = np.array(to_rgb(colour))
    c = np.where(c > 0.04045, ((c + 0.055) / 1.055) ** 2.4, c / 12.92)
    m = np.array([[0.4124, 0.3576, 0.1805], [0.2126, 0.7152, 0.0722], [0.0193, 0.1192, 0.9505]])
    xyz = m @ c / np.array([0.95047, 1.0, 1.08883])
    f = np.where(xyz > 0.008856, np.cbrt(xyz), 7.787 * xyz + 16 / 116)
    return np.array([116 * f[1] - 16, 500 * (f[0] - f[1]), 200 * (f[1] - f[2])])


def _drawn_frame(monkeypatch, tmp_path, arch, masks, partition, **kwargs):
    """Draw and return the figure frame (boxes, texts) that draw_modules saved."""
    from detection_pipeline import draw

    frames = []
    real = draw._frame
    monkeypatch.setattr(draw, "_frame", lambda *a, **k: frames.append(real(*a, **k)) or frames[-1])
    draw.draw_modules(arch, masks, partition, tmp_path / "p.png", **kwargs)
    return frames[0]


def test_twelve_modules_get_twelve_distinct_colours():
    import itertools

    import numpy as np

    from detection_pipeline import draw
    from detection_pipeline.export import kept_layer_edges

    modules = [np.arange(12), np.arange(12)]
    edges = kept_layer_edges([12, 12], [np.eye(12)], np.concatenate(modules))
    layout = draw._layout([12, 12], modules, edges)
    colours = list(draw._module_colours(layout, modules).values())
    assert len(set(colours)) == 12
    labs = [_lab(c) for c in [*colours, draw._CROSS_MODULE_GREY]]
    closest = min(np.linalg.norm(a - b) for a, b in itertools.combinations(labs, 2))
    assert closest >= 25, f"two module colours are only {closest:.1f} Lab units apart"


def test_one_box_per_module_spans_its_layers(monkeypatch, tmp_path):
    import numpy as np
    from matplotlib.patches import FancyBboxPatch

    arch = [4, 3, 2]
    masks = [np.array([[1, 1, 0, 0], [0, 0, 1, 1], [1, 0, 0, 1]]), np.array([[1, 0, 1], [0, 1, 1]])]
    partition = np.array([0, 0, 1, -1, 0, 1, -1, 0, 1])
    frame = _drawn_frame(monkeypatch, tmp_path, arch, masks, partition)
    boxes = [p for p in frame.ax.patches if isinstance(p, FancyBboxPatch)]
    assert len(boxes) == 2  # one per module, not one per module per row
    for box in boxes:
        assert box.get_y() == pytest.approx(-0.2) and box.get_height() == pytest.approx(2.4)


def test_reordered_outputs_say_labels_are_original_indices(monkeypatch, tmp_path):
    import numpy as np

    arch = [2, 2, 2]
    masks = [np.eye(2), np.array([[0, 1], [1, 0]])]  # input 0 -> hidden 0 -> output 1
    partition = np.array([0, 1, 0, 1, 1, 0])
    frame = _drawn_frame(monkeypatch, tmp_path, arch, masks, partition)
    titles = " ".join(t.get_text() for t in frame.fig.texts)
    assert "outputs reordered to group modules: labels are original indices" in titles
    labels = [t.get_text() for t in frame.ax.texts]
    assert labels.count("0") == 2 and labels.count("1") == 2  # every input and output unit labelled


def test_wide_input_rows_get_one_range_label_per_module(monkeypatch, tmp_path):
    import numpy as np

    arch = [128, 8, 2]
    masks = [np.ones((8, 128)), np.ones((2, 8))]
    left = np.arange(128) % 16 < 8  # the left 8x8 image of a 16-wide row-major two-digit input
    partition = np.concatenate([np.where(left, 0, 1), [0] * 4 + [1] * 4, [0, 1]])
    frame = _drawn_frame(monkeypatch, tmp_path, arch, masks, partition)
    labels = [t.get_text() for t in frame.ax.texts]
    assert "64 units: 0–7, 16–23, 32–39, 48–55 … (+4 runs)" in labels
    assert "64 units: 8–15, 24–31, 40–47, 56–63 … (+4 runs)" in labels
    assert not any(t.isdigit() and int(t) > 2 for t in labels)  # not 128 tiny labels


def test_sculpt_picture_title_names_training_steps_and_verdict(tmp_path, capsys):
    import numpy as np

    from detection_pipeline.partition import Partition
    from run.detection_outputs import picture_title
    from run.network_source import Target
    from utils.network import LayeredNetwork

    config = parse_config([*DONE_WHEN, "--experiment", "module_detection", "--unit_pruning_gradient", "70"])
    network = LayeredNetwork(
        arch=[4, 24, 4],
        weights=[np.ones((24, 4)), np.ones((4, 24))],
        biases=[np.zeros(24), np.zeros(4)],
        masks=[np.ones((24, 4)), np.ones((4, 24))],
        metrics={"test_accuracy": 100.0},
    )
    partition = Partition(labels=np.zeros(32, dtype=int), arch=[4, 24, 4], method="sculpt")
    title = picture_title(
        config, Target(network, tmp_path, tmp_path), partition, "options", (70.0, 2.5), "verdict: no success"
    )
    for part in ("boolean 4 2 4", "arch 4 24 4", "seed 0", "lr 0.05", "batch 8", "epochs 15",
                 "unit step 70", "edge step 2.5", "density 100.00%", "test acc 100.0%", "1 module",
                 "verdict: no success"):  # fmt: skip
        assert part in title, part
    assert "1 modules" not in title


# ------------------------------------------------------------------------------------- 8. README truth


def test_missing_unit_pruned_run_names_the_option_to_add(tmp_path, capsys):
    units = ["--experiment", "prune", *TINY, *PRUNE, "--result_path", tmp_path, "--quiet", "--prune_units"]
    assert call_main([*units, "1", "--unit_pruning_gradient", "50"], capsys)[0] == 0
    rc, _, err = call_main([*units, "0", "--pruning_gradient", "5"], capsys)  # the unit step left out
    assert rc == 2 and "add --unit_pruning_gradient 50" in one_error_line(err)
    rc, _, err = call_main([*units, "0", "--unit_pruning_gradient", "60"], capsys)  # a step never run
    assert rc == 2 and "add --unit_pruning_gradient 50" in one_error_line(err)


def test_every_option_has_help_and_shows_its_default():
    from run.parser import build_parser

    parser = build_parser()
    missing = [a.option_strings[0] for a in parser._actions if not a.help]
    assert missing == []
    text = parser.format_help()
    assert "--lr LR               learning rate (default: 0.05)" in text


def test_a_batched_sculpt_says_busy_instead_of_deadlocking(tmp_path, capsys):
    from run.runs import unit_dir

    argv = ["--experiment", "sculpt", *TINY, *PRUNE, "--unit_pruning_gradient", "50", "60"]
    argv += ["--pruning_gradient", "50", "--arch", "4", "24", "4"]  # a width whose batched products are exact
    argv += ["--result_path", str(tmp_path / "r"), "--visualization_path", str(tmp_path / "v"), "--quiet"]
    holder = _hold_lock(unit_dir(parse_config(argv), 60.0), 60.0)
    try:
        start = time.perf_counter()
        rc, _, err = call_main(argv, capsys)
        assert time.perf_counter() - start < 50
    finally:
        holder.kill()
        holder.wait()
    assert rc == 2 and f"busy: process {holder.pid}" in one_error_line(err)


def test_a_nan_loss_in_batched_training_is_an_error_naming_it():
    from run.common import prepare
    from utils.batched_training import train_batched
    from utils.errors import NumericalError

    config = parse_config([*TINY])
    ctx = prepare(config)
    models = [_tiny_model(), _tiny_model()]
    with torch.no_grad():
        models[1].layers[0].weight[0, 0] = math.nan
    generators = [torch.Generator().manual_seed(0), torch.Generator().manual_seed(1)]
    with pytest.raises(NumericalError, match="training loss became nan"):
        train_batched(models, ctx.data, ctx.training, generators)
