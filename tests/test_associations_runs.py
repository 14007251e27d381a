"""The association studies' plumbing: --l1 training, compare_partitions on the published example (sculpt
against newman), and the associations_summary of a sweep folder."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch

from run.parser import parse_config
from tests.conftest import DONE_WHEN, call_main, edge_run_path


def test_l1_shrinks_the_weights_and_names_the_run(tmp_path, capsys):
    from models.mlp import MLP
    from run.common import generator_for, prepare
    from run.runs import training_key
    from utils.training import l1_penalty, train

    norms = {}
    for strength in ("0", "0.01"):
        config = parse_config([*DONE_WHEN, "--epochs", "3", "--quiet", "--l1", strength])
        torch.manual_seed(0)
        model = MLP(config.arch)
        train(model, prepare(config).data, config, generator_for(0))
        norms[strength] = float(l1_penalty(model))
        assert ("l1-0.01" in training_key(config)) == (strength == "0.01")
    # Hand check of the penalty: sum of |w| over kept weights.
    expected = sum(float((layer.weight * layer.weight_mask).abs().sum()) for layer in model.layers)
    assert norms["0.01"] == pytest.approx(expected)
    assert norms["0.01"] < 0.9 * norms["0"]
    rc, _, err = call_main([*DONE_WHEN, "--l1", "-1"], capsys)
    assert rc == 2 and "--l1" in err


def test_compare_sculpt_with_newman_on_the_published_example(published_example, tmp_path, capsys):
    root = tmp_path / "results"
    shutil.copytree(published_example, root)
    common = [
        *DONE_WHEN, "--experiment", "module_detection", "--unit_pruning_gradient", "70.0",
        "--prune_acc_threshold", "100.0", "--pruning_gradient", "2.5", "--result_path", str(root),
        "--visualization_path", str(tmp_path / "v"), "--quiet",
    ]  # fmt: skip
    run = edge_run_path(root)
    files = []
    for method in (  # --mc_steps is newman's: sculpt refuses an option it does not use
        ["--method", "sculpt"],
        ["--method", "newman", "--mc_steps", "500"],
        ["--method", "newman", "--association", "backward_jac", "--mc_steps", "500"],
    ):
        assert call_main([*common, *method], capsys)[0] == 0
        files.append(tmp_path / f"{len(files)}.json")
        own = "modules.json" if method[1] == "sculpt" else f"modules_{method[1]}.json"  # one file per method
        shutil.copy(run / own, files[-1])
    newman = json.loads(files[1].read_text())
    sculpt = json.loads(files[0].read_text())
    # Newman drops the units sculpt drops (no activity / no path) in the hidden layer.
    hidden = slice(4, 28)
    assert [x >= 0 for x in newman["partition"][hidden]] == [x >= 0 for x in sculpt["partition"][hidden]]
    out = tmp_path / "cmp"
    argv = [
        "--experiment",
        "compare_partitions",
        "--partitions",
        *map(str, files),
        "--out",
        str(out),
        "--quiet",
    ]
    rc, printed, _ = call_main(argv, capsys)
    assert rc == 0 and "3 partitions" in printed
    comparison = json.loads((out / "comparison.json").read_text())
    assert list(comparison["layers"]) == ["1"]  # newman labels hidden units only
    pair = comparison["layers"]["1"]["sculpt|newman:forward_cov"]
    assert 0.0 <= pair["nmi"] <= 1.0 and "spearman_r" not in pair and "transfer_q_ba" in pair
    assert (out / "agreement.png").read_bytes()[:4] == b"\x89PNG"


def test_summary_reads_regularisation_from_folders_and_groups_agreement(tmp_path, capsys):
    from detection_pipeline.associations.matrices import ASSOCIATIONS

    for p, q in (("0", 0.1), ("0.5", 0.3)):
        folder = tmp_path / f"lr-0.001_batch-100_epochs-30_loss-CE_dropout-{p}_wd-0" / "seed-1" / "dense"
        (folder / "associations").mkdir(parents=True)
        (folder / "config.json").write_text(json.dumps({"dropout": float(p), "weight_decay": 0.0, "seed": 1}))
        pairs = {
            f"{a}|{b}": {"ari": 1.0 if (a.startswith("forward") == b.startswith("forward")) else 0.0}
            for i, a in enumerate(ASSOCIATIONS)
            for b in ASSOCIATIONS[i + 1 :]
        }
        comparison = {"layers": {"1": pairs}, "Q": {name: [q, q + 0.1] for name in ASSOCIATIONS}}
        (folder / "associations" / "comparison.json").write_text(json.dumps(comparison))
    rc, out, _ = call_main(["--experiment", "associations_summary", "--result_path", str(tmp_path)], capsys)
    assert rc == 0
    rows = json.loads((tmp_path / "associations_summary.json").read_text())["runs"]
    assert sorted((r["dropout"], r["seed"], r["l1"], r["l2"]) for r in rows) == [
        (0.0, 1, 0.0, 0.0),
        (0.5, 1, 0.0, 0.0),
    ]
    assert {r["dropout"]: r["Q"]["forward_cov"] for r in rows} == pytest.approx({0.0: 0.15, 0.5: 0.35})
    assert rows[0]["agreement_ari"] == {"upstream": 1.0, "downstream": 1.0, "across": 0.0, "twins": 1.0}
    assert (tmp_path / "associations_summary.png").is_file()
    rc, _, err = call_main(
        ["--experiment", "associations_summary", "--result_path", str(tmp_path / "none")], capsys
    )
    assert rc == 2 and "no associations" in err
    assert np.isfinite(rows[0]["Q"]["backward_hess"])
