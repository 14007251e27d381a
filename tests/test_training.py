"""Training: Done-when runs reach 100 %, run files, reproducibility, reuse, every optimizer/loss/schedule."""

from __future__ import annotations

import json
import math

import pytest
import torch

import run.common
from models.mlp import MLP
from run.common import generator_for, prepare
from run.parser import parse_config
from tests.conftest import (
    DONE_WHEN,
    REPO,
    all_files,
    assert_states_equal,
    call_main,
    load_state,
    one_error_line,
    run_cli,
    seed_path,
)
from utils.training import (
    TaskTensors,
    accuracy_percent,
    evaluate,
    loss_value,
    per_sample_loss,
    train,
)

DENSE_FILES = ["config.json", "metrics.json", "model.pt", "network.npz"]


def test_done_when_run_reaches_100_percent_via_the_cli(result_path):
    rc, out, err = run_cli(*DONE_WHEN, "--result_path", str(result_path), "--quiet")
    assert rc == 0, err
    assert out.startswith("test accuracy 100.00%") and out.count("\n") == 1  # --quiet: the result line
    assert err == ""  # and no progress bars
    run = seed_path(result_path) / "dense"
    assert [str(p) for p in all_files(result_path)] == [
        str(p.relative_to(result_path)) for p in sorted(run / f for f in DENSE_FILES)
    ]  # nothing else, no temp files
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["test_accuracy"] == 100.0
    for key in ("test_accuracy", "test_loss", "val_accuracy", "train_loss", "density", "epochs"):
        assert key in metrics, key
    assert metrics["epochs"] == 15 and metrics["density"] == 100.0
    assert len(metrics["val_accuracy"]) == 15 and len(metrics["train_loss"]) == 15
    assert all(0.0 <= a <= 100.0 for a in metrics["val_accuracy"])
    assert metrics["train_loss"][-1] < metrics["train_loss"][0]  # it learned
    assert metrics["test_loss"] < math.log(2)
    config = json.loads((run / "config.json").read_text())
    assert config["arch"] == [4, 24, 4] and config["epochs"] == 15 and config["lr"] == 0.05
    state = load_state(run / "model.pt")
    assert state["layers.0.weight"].shape == (24, 4) and torch.equal(
        state["layers.0.weight_mask"], torch.ones(24, 4)
    )
    # the saved network really is the 100 % one
    model = MLP([4, 24, 4])
    model.load_state_dict(state)
    ctx = prepare(parse_config(DONE_WHEN))
    assert evaluate(model, ctx.data.x_test, ctx.data.y_test, ctx.data, "BCE")[0] == 100.0


def test_done_when_6_3_3_3_reaches_100_percent(result_path, capsys):
    argv = [*DONE_WHEN[:3], "6", "3", "3", "3", "--arch", "6", "24", "24", "3", *DONE_WHEN[10:]]
    assert argv[2:12] == ["--modularity", "6", "3", "3", "3", "--arch", "6", "24", "24", "3"]
    rc, _, err = call_main([*argv, "--result_path", result_path, "--quiet"], capsys)
    assert rc == 0, err
    (metrics_file,) = result_path.rglob("metrics.json")
    metrics = json.loads(metrics_file.read_text())
    assert metrics["test_accuracy"] == 100.0
    assert metrics["units_kept"] == [6, 24, 24, 3]
    assert metrics_file.parent.parent.name == "seed-0" and "arch-6-24-24-3" in str(metrics_file)


def test_same_command_gives_identical_weights(tmp_path, capsys):
    paths = [tmp_path / "a", tmp_path / "b"]
    for path in paths:
        assert call_main([*DONE_WHEN, "--result_path", path, "--quiet"], capsys)[0] == 0
    a, b = (load_state(seed_path(p) / "dense" / "model.pt") for p in paths)
    assert_states_equal(a, b)
    ma, mb = (json.loads((seed_path(p) / "dense" / "metrics.json").read_text()) for p in paths)
    assert ma["val_accuracy"] == mb["val_accuracy"] and ma["train_loss"] == mb["train_loss"]
    # another seed gives other weights
    assert call_main([*DONE_WHEN[:-1], "1", "--result_path", paths[0], "--quiet"], capsys)[0] == 0
    other = load_state(
        paths[0].joinpath(
            *seed_path(paths[0]).relative_to(paths[0]).parts[:-1], "seed-1", "dense", "model.pt"
        )
    )
    assert not torch.equal(other["layers.0.weight"], a["layers.0.weight"])


def test_finished_run_is_reused_and_force_redoes_it(result_path, capsys, monkeypatch):
    argv = [*DONE_WHEN, "--result_path", result_path, "--quiet"]
    assert call_main(argv, capsys)[0] == 0
    model_file = seed_path(result_path) / "dense" / "model.pt"
    first = model_file.stat().st_mtime_ns
    weights = load_state(model_file)

    def no_training(*args, **kwargs):
        raise AssertionError("a finished run was retrained")

    monkeypatch.setattr(run.common, "train", no_training)
    assert call_main(argv, capsys)[0] == 0
    assert model_file.stat().st_mtime_ns == first
    monkeypatch.undo()
    assert call_main([*argv, "--force"], capsys)[0] == 0
    assert model_file.stat().st_mtime_ns != first
    assert_states_equal(load_state(model_file), weights)  # same seed, same network
    assert sorted(p.name for p in model_file.parent.iterdir()) == DENSE_FILES


def test_ce_loss_on_a_boolean_task_is_exit_2(result_path, capsys):
    rc, out, err = call_main([*DONE_WHEN, "--loss", "CE", "--result_path", result_path, "--quiet"], capsys)
    assert rc == 2
    assert "--loss CE" in one_error_line(err)
    assert not result_path.exists()


# ------------------------------------------------------------------------------------- in-process training


def small_config(*extra: str):
    return parse_config([*DONE_WHEN, "--epochs", "3", "--quiet", *extra])


@pytest.fixture(scope="module")
def data():
    return prepare(small_config()).data


def fresh_model(seed=0, arch=(4, 24, 4), **kwargs):
    torch.manual_seed(seed)
    return MLP(list(arch), **kwargs)


@pytest.mark.parametrize("optimizer", ["adam", "sgd", "momentum", "rms"])
@pytest.mark.parametrize("loss", ["BCE", "MSE"])
@pytest.mark.parametrize("scheduler", ["exp", "cosine"])
def test_every_optimizer_loss_and_scheduler_trains(optimizer, loss, scheduler, data):
    config = small_config(
        "--optimizer", optimizer, "--loss", loss, "--scheduler", scheduler, "--gamma", "0.9"
    )
    model = fresh_model()
    before = model.layers[0].weight.detach().clone()
    result = train(model, data, config, generator_for(0))
    m = result.metrics
    assert len(m["train_loss"]) == len(m["val_accuracy"]) == len(m["val_loss"]) == 3
    assert all(math.isfinite(v) for v in m["train_loss"] + m["val_loss"])
    assert 0 <= m["best_epoch"] < 3 and 0.0 <= m["test_accuracy"] <= 100.0
    assert not torch.equal(model.layers[0].weight, before)
    assert_states_equal(model.state_dict(), result.state)  # the model holds the best epoch


@pytest.mark.parametrize(
    "extra",
    [
        ["--hidden_layer_activation", "sigmoid"],
        ["--hidden_layer_activation", "ste"],
        ["--bn", "True"],
        ["--dropout", "0.2"],
        ["--dataset_noise", "False"],
        ["--weight_decay", "0"],
    ],
    ids=["sigmoid", "ste", "bn", "dropout", "no-noise", "no-wd"],
)
def test_model_variants_train(extra, data):
    config = small_config(*extra)
    model = MLP(config.arch, config.hidden_layer_activation, config.bn, config.dropout)
    result = train(
        model, prepare(config).data if "--dataset_noise" in extra else data, config, generator_for(0)
    )
    assert all(math.isfinite(v) for v in result.metrics["train_loss"])


def test_best_epoch_is_kept(data):
    config = small_config("--epochs", "8", "--lr", "0.5", "--optimizer", "sgd")
    model = fresh_model()
    result = train(model, data, config, generator_for(0))
    m = result.metrics
    keys = [(a, -l) for a, l in zip(m["val_accuracy"], m["val_loss"])]
    assert m["best_epoch"] == max(range(8), key=lambda e: keys[e])
    # boolean tasks test on the validation table: the kept model scores exactly the best epoch
    assert m["test_accuracy"] == m["val_accuracy"][m["best_epoch"]]
    assert m["test_loss"] == pytest.approx(m["val_loss"][m["best_epoch"]], rel=1e-6)


def test_include_start_keeps_a_better_start(data):
    good = fresh_model()
    train(good, data, small_config("--epochs", "15"), generator_for(0))
    start_state = {k: v.clone() for k, v in good.state_dict().items()}
    start_acc, _ = evaluate(good, data.x_val, data.y_val, data, "BCE")
    assert start_acc == 100.0
    # a destructive fine-tune (huge SGD steps) is worse at every epoch; the start must win
    wrecked = train(
        good,
        data,
        small_config("--epochs", "2", "--lr", "1000", "--optimizer", "sgd"),
        generator_for(0),
        include_start=True,
    )
    assert wrecked.metrics["best_epoch"] == -1 and wrecked.metrics["test_accuracy"] == 100.0
    assert_states_equal(good.state_dict(), start_state)


def test_training_is_reproducible_with_a_seeded_generator(data):
    config = small_config()
    a, b = fresh_model(), fresh_model()
    ra = train(a, data, config, generator_for(3))
    rb = train(b, data, config, generator_for(3))
    assert ra.metrics["train_loss"] == rb.metrics["train_loss"]
    assert_states_equal(a.state_dict(), b.state_dict())
    c = fresh_model()
    rc = train(c, data, config, generator_for(4))
    assert rc.metrics["train_loss"] != ra.metrics["train_loss"]


def test_noise_changes_the_training_inputs():
    noisy = prepare(small_config()).data
    clean = prepare(small_config("--dataset_noise", "False")).data
    assert noisy.noise_std == pytest.approx(0.1) and clean.noise_std == 0.0
    config = small_config("--epochs", "1")
    a, b = fresh_model(), fresh_model()
    ra = train(a, noisy, config, generator_for(0))
    rb = train(b, clean, config, generator_for(0))
    assert ra.metrics["train_loss"] != rb.metrics["train_loss"]


def test_task_tensors_for_the_truth_table(data):
    assert isinstance(data, TaskTensors)
    assert data.x_train.shape == (32, 4)  # table_repeats 2
    assert data.x_val.shape == (16, 4) and data.y_val.shape == (16, 4)
    assert data.x_test is data.x_val
    rows = {tuple(int(v) for v in r) for r in data.x_val.tolist()}
    assert len(rows) == 16
    # 4 2 4: y0 = x0 xor x1, y1 = not y0, y2 = x2 xor x3, y3 = not y2
    x, y = data.x_val, data.y_val
    assert torch.equal(y[:, 0], (x[:, 0] != x[:, 1]).float()) and torch.equal(y[:, 1], 1 - y[:, 0])
    assert torch.equal(y[:, 2], (x[:, 2] != x[:, 3]).float()) and torch.equal(y[:, 3], 1 - y[:, 2])


def test_accuracy_and_losses_by_hand():
    logits = torch.tensor([[2.0, -1.0], [0.5, 0.3], [-0.2, -3.0]])
    y = torch.tensor([[1.0, 0.0], [0.0, 1.0], [0.0, 0.0]])
    assert accuracy_percent(logits, y, "bits", [[0, 1]]) == pytest.approx(100 * 5 / 6)
    p = torch.sigmoid(logits)
    bce = -(y * p.log() + (1 - y) * (1 - p).log())
    assert torch.allclose(per_sample_loss(logits, y, "BCE", [[0, 1]]), bce.mean(dim=1), atol=1e-6)
    assert float(loss_value(logits, y, "BCE", [[0, 1]])) == pytest.approx(float(bce.mean()), rel=1e-5)
    mse = (p - y) ** 2
    assert torch.allclose(per_sample_loss(logits, y, "MSE", [[0, 1]]), mse.mean(dim=1), atol=1e-6)
    assert float(loss_value(logits, y, "MSE", [[0, 1]])) == pytest.approx(float(mse.mean()), rel=1e-5)
    groups = [[0, 1]]
    onehot = torch.tensor([[1.0, 0.0], [0.0, 1.0], [0.0, 1.0]])
    assert accuracy_percent(logits, onehot, "groups", groups) == pytest.approx(100 * 1 / 3)
    ce = torch.nn.functional.cross_entropy(logits, onehot.argmax(1), reduction="none")
    assert torch.allclose(per_sample_loss(logits, onehot, "CE", groups), ce)


def test_batch_norm_with_a_last_batch_of_one_sample(result_path, capsys):
    """32 training rows in batches of 31 leave one sample: batch norm cannot train on it. The run must not
    end in a traceback (fold the sample into the previous batch, or refuse with one line)."""
    for batch in ("31", "1"):
        argv = [*DONE_WHEN, "--bn", "True", "--batch_size", batch, "--epochs", "2"]
        rc, _, err = call_main([*argv, "--result_path", result_path / batch, "--quiet"], capsys)
        assert rc in (0, 2)
        if rc == 2:
            assert "--bn" in one_error_line(err) or "--batch_size" in one_error_line(err)


def test_a_graph_task_does_not_reuse_another_tasks_network(result_path, capsys):
    """--graph defines the task (its own modularity); the run directory must not be the one of the
    --modularity default (4 2 4), or a finished 4-2-4 network is silently reused for a different task."""
    common = [*DONE_WHEN, "--result_path", result_path, "--quiet"]
    assert call_main(common, capsys)[0] == 0
    graph = REPO / "datasets" / "graphs" / "exemplar" / "4-1-4.json"
    no_modularity = [*DONE_WHEN[:2], *DONE_WHEN[6:], "--result_path", result_path, "--quiet"]
    assert "--modularity" not in no_modularity and no_modularity[2:6] == ["--arch", "4", "24", "4"]
    assert call_main([*no_modularity, "--graph", graph], capsys)[0] == 0
    runs = sorted(result_path.rglob("dense/metrics.json"))
    assert len(runs) == 2, f"one run directory for two tasks: {runs}"
