"""Batched searches: members trained as one stacked model give exactly the sequential results."""

from __future__ import annotations

import copy
import json

import pytest
import torch

from models.mlp import MLP
from run.batched_searches import run_all
from run.common import generator_for, prepare
from run.parser import parse_config
from tests.conftest import call_main
from utils.batched_training import train_batched
from utils.training import train

GRID = ["--experiment", "sculpt", "--modularity", "4", "2", "4", "--arch", "4", "24", "4",
        "--unit_pruning_gradient", "50", "70", "--pruning_gradient", "2.5", "2.0", "--quiet"]  # fmt: skip


def _members(arch, n):
    models = []
    for seed in range(n):
        torch.manual_seed(seed)
        models.append(MLP(arch))
    with torch.no_grad():  # one member with pruned units, one with pruned edges
        models[1].layers[0].weight_mask[:6] = 0
        models[1].layers[0].bias_mask[:6] = 0
        models[1].layers[1].weight_mask[:, :6] = 0
        models[2].layers[1].weight_mask[0, :] = 0
    return models


@pytest.mark.parametrize(
    "loss, extra, include_start",
    [
        ("BCE", [], True),
        ("MSE", [], True),
        ("BCE", ["--best_epoch", "published"], False),  # 8 validation batches: the published batch sum
        ("BCE", ["--best_epoch", "published", "--batch_size", "64"], True),  # one batch: infinite loss
    ],
)
def test_train_batched_equals_train_bit_for_bit(loss, extra, include_start):
    argv = ["--modularity", "6", "3", "3", "3", "--arch", "6", "24", "24", "3", "--loss", loss, *extra]
    ctx = prepare(parse_config(argv))
    models = _members([6, 24, 24, 3], 4)
    alone = [copy.deepcopy(m) for m in models]
    together = [copy.deepcopy(m) for m in models]
    expected = [
        train(m, ctx.data, ctx.training, generator_for(i), include_start=include_start)
        for i, m in enumerate(alone)
    ]
    got = train_batched(
        together, ctx.data, ctx.training, [generator_for(i) for i in range(4)], include_start=include_start
    )
    for a, b, ma, mb in zip(expected, got, alone, together):
        for key, value in ma.state_dict().items():
            assert torch.equal(value, mb.state_dict()[key]), key
        assert a.metrics == b.metrics


def test_a_failing_search_fails_the_batch():
    ctx = prepare(parse_config([]))

    def good(factory):
        model = MLP([4, 24, 4])
        return factory(generator_for(0))(model)["test_accuracy"]

    def bad(factory):
        raise ValueError("broken member")

    assert len(run_all([good, good], ctx.data, ctx.training)) == 2
    with pytest.raises(ValueError, match="broken member"):
        run_all([good, bad, good], ctx.data, ctx.training)


def _run_files(root):
    out = {}
    for path in sorted(root.rglob("*")):
        if path.suffix == ".pt":
            out[str(path.relative_to(root))] = torch.load(path, weights_only=True)
        elif path.name == "metrics.json":
            metrics = json.loads(path.read_text())
            metrics.pop("seconds", None)
            out[str(path.relative_to(root))] = metrics
    return out


def _same(a: dict, b: dict) -> None:
    assert sorted(a) == sorted(b)
    for key, value in a.items():
        if isinstance(value, dict) and all(torch.is_tensor(v) for v in value.values()):
            assert all(torch.equal(value[k], b[key][k]) for k in value), key
        else:
            assert value == b[key], key


@pytest.mark.slow
@pytest.mark.parametrize("extra", [[], ["--retrain_include_start", "False", "--best_epoch", "published"]])
def test_batched_grid_and_seeds_write_what_sequential_runs_write(tmp_path, capsys, extra):
    """Also with the published retraining rules (the start does not compete; published best epoch)."""
    for seed in ("0", "1"):
        argv = [*GRID, *extra, "--seed", seed, "--batch_members", "1", "--result_path", tmp_path / "seq"]
        rc, _, err = call_main([*argv, "--visualization_path", tmp_path / "v1"], capsys)
        assert rc == 0, err
    rc, out, err = call_main([*GRID, *extra, "--seeds", "0", "1", "--result_path", tmp_path / "bat",
                              "--visualization_path", tmp_path / "v2"], capsys)  # fmt: skip
    assert rc == 0, err
    assert out.count("success") + out.count("no success") == 2 and "seed 1:" in out
    sequential, batched = _run_files(tmp_path / "seq"), _run_files(tmp_path / "bat")
    assert len(sequential) == 2 * (2 + 2 * 2 + 4 * 2)  # per seed: dense, 2 unit and 4 edge runs (.pt + json)
    _same(sequential, batched)
