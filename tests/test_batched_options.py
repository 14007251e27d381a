"""Every training option trains the same batched and one by one: the batch implements an option exactly or
declines it (its members then train alone, and the run says so)."""

from __future__ import annotations

import copy
import dataclasses

import pytest
import torch

from models.mlp import MLP
from run.common import generator_for, prepare
from run.options import training_options
from run.parser import parse_config
from tests.conftest import call_main
from tests.test_batched import GRID, _run_files, _same
from utils.batched_training import BATCHED_OPTIONS, DECLINING_OPTIONS, batch_declined, train_batched
from utils.training import TrainingOptions, train

# one value away from the parser default for every training option
OPTION_VALUES = {
    "optimizer": ["--optimizer", "momentum"],
    "lr": ["--lr", "0.02"],
    "weight_decay": ["--weight_decay", "0.001"],
    "l1": ["--l1", "0.003"],
    "loss": ["--loss", "MSE"],
    "epochs": ["--epochs", "3"],
    "batch_size": ["--batch_size", "4"],
    "scheduler": ["--scheduler", "cosine"],
    "gamma": ["--gamma", "0.9"],
    "best_epoch": ["--best_epoch", "published"],
    "clusterability_reg": ["--clusterability_reg", "0.01"],
    "reg_k": ["--clusterability_reg", "0.01", "--reg_k", "2"],
    "reg_every": ["--clusterability_reg", "0.01", "--reg_every", "3"],
    "normalize_weights_every": ["--normalize_weights_every", "5"],
}


def test_every_training_option_is_placed_and_tested():
    fields = {f.name for f in dataclasses.fields(TrainingOptions)}
    assert BATCHED_OPTIONS | DECLINING_OPTIONS == fields
    assert not BATCHED_OPTIONS & DECLINING_OPTIONS
    assert set(OPTION_VALUES) == fields


def _defaults() -> TrainingOptions:
    return training_options(parse_config([]))


def _members(n):
    models = []
    for seed in range(n):
        torch.manual_seed(seed)
        models.append(MLP([4, 24, 4]))
    with torch.no_grad():
        models[1].layers[0].weight_mask[:5] = 0
        models[1].layers[0].bias_mask[:5] = 0
        models[1].layers[1].weight_mask[:, :5] = 0
    return models


@pytest.mark.parametrize("name", sorted(OPTION_VALUES))
def test_each_training_option_gives_the_same_result_batched_and_alone(name):
    ctx = prepare(parse_config(["--epochs", "4", *OPTION_VALUES[name]]))
    options = ctx.training
    assert getattr(options, name) != getattr(_defaults(), name) or name in ("reg_k", "reg_every")
    models = _members(3)
    declined = batch_declined(models[0], options, ctx.data)
    assert (declined is not None) == (name in DECLINING_OPTIONS) or name == "batch_size"
    alone, together = [copy.deepcopy(m) for m in models], [copy.deepcopy(m) for m in models]
    expected = [
        train(m, ctx.data, options, generator_for(i), include_start=True) for i, m in enumerate(alone)
    ]
    got = train_batched(together, ctx.data, options, [generator_for(i) for i in range(3)], include_start=True)
    for a, b, ma, mb in zip(expected, got, alone, together):
        for key, value in ma.state_dict().items():
            assert torch.equal(value, mb.state_dict()[key]), (name, key)
        assert a.metrics == b.metrics, name


def test_the_batch_declines_networks_it_cannot_train_exactly():
    data = prepare(parse_config([])).data
    options = _defaults()
    assert batch_declined(MLP([4, 24, 4]), options, data) is None
    assert batch_declined(MLP([4, 24, 4], activation="sigmoid"), options, data) == "sigmoid hidden units"
    assert batch_declined(MLP([4, 24, 4], batch_norm=True), options, data) == "batch norm"
    assert batch_declined(MLP([4, 24, 4], dropout=0.1), options, data) == "dropout"
    assert batch_declined(MLP([4, 24, 4]), dataclasses.replace(options, l1=0.003), data) == "--l1"


SMALL_GRID = [
    *GRID[: GRID.index("--unit_pruning_gradient")],
    "--unit_pruning_gradient",
    "50",
    "--pruning_gradient",
    "2.5",
    "2.0",
]  # fmt: skip  (not --quiet: the note is shown)


@pytest.mark.slow
@pytest.mark.parametrize("extra", [["--l1", "0.003"], ["--clusterability_reg", "0.01", "--reg_every", "4"]])
def test_sculpt_with_a_declining_option_writes_the_same_run_folders_batched(tmp_path, capsys, extra):
    rc, _, err = call_main([*SMALL_GRID, *extra, "--batch_members", "1", "--result_path", tmp_path / "seq",
                            "--visualization_path", tmp_path / "v1"], capsys)  # fmt: skip
    assert rc == 0, err
    rc, _, err = call_main([*SMALL_GRID, *extra, "--result_path", tmp_path / "bat",
                            "--visualization_path", tmp_path / "v2"], capsys)  # fmt: skip
    assert rc == 0, err
    assert f"{extra[0]} is not batched" in err
    sequential, batched = _run_files(tmp_path / "seq"), _run_files(tmp_path / "bat")
    assert len(sequential) == 2 * (1 + 1 + 2)
    _same(sequential, batched)
