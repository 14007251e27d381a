"""Replay the published code's CPU runs with `--recipe published` and compare them step by step.

    OMP_NUM_THREADS=1 python3 benchmarks/replay_published.py [--reference DIR] [--seeds 0 1 ...]
                                                             [--result_path DIR] [--quiet]

DIR holds seed<N>/{dense,units}.npz and history.json (the published_cpu reference package; default
../shared/reference/published_cpu). For every seed, sculpt's CLI runs
`--experiment prune --prune_units 1 --checkpoint seed<N>/dense.npz --recipe published` (the unit phase) and
`--prune_units 0 --checkpoint seed<N>/units.npz` (the edge phase) with the reference's command line; then
every try of metrics.json's history is set beside the published one (target, trained, accepted, weights
kept, tried mask, test accuracy, kept epoch). A phase is replayed exactly when every try has the same
target, mask and accept/reject, and the searches have the same length.

At the first differing try the script says what differs: the cut (another mask), the retraining (same mask,
another accuracy: it retrains that try again from the published start network, the reference's
steps.npz, at the same position of the random stream, to tell a stream difference from rounding carried
over from earlier retrainings), or the acceptance test. It ends with the per-target acceptance counts of
both sides and the CPU seconds spent (time.process_time; the machine is shared).

    python3 benchmarks/replay_published.py --success [--seeds ...]

instead runs the whole cell from each seed (dense training, unit phase, edge phase) twice, with sculpt's
default options and with `--recipe published`, detects modules on the final network and scores them with
sculpt's scorer, beside the published network's verdict (history.json's sculpt_score).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import Counter
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

DEFAULT_REFERENCE = ROOT.parent / "shared" / "reference" / "published_cpu"
CELL = (
    "--task boolean --dataset_path {root}/datasets/increasing_reuse_non_separable/ --modularity 4 1 2 4 "
    "--arch 4 24 24 4 --lr 0.1 --batch_size 8 --epochs 40 --unit_pruning_gradient 70.0 "
    "--prune_acc_threshold 100.0 --pruning_gradient 2.5 --recipe published"
)


def run_phase(reference: Path, seed: int, phase: str, result_path: Path, quiet: bool) -> dict:
    """Run one phase through sculpt's CLI (in this process) and return its metrics.json."""
    from main import main
    from run.parser import parse_config
    from run.runs import edges_after_units_dir, unit_dir

    start = "dense.npz" if phase == "unit" else "units.npz"
    argv = CELL.format(root=ROOT).split() + ["--experiment", "prune", "--seed", str(seed)]
    argv += [
        "--prune_units",
        "1" if phase == "unit" else "0",
        "--checkpoint",
        str(reference / f"seed{seed}" / start),
    ]
    argv += ["--result_path", str(result_path), "--quiet"]
    if quiet:
        import contextlib
        import io

        with contextlib.redirect_stdout(io.StringIO()):
            code = main(argv)
    else:
        code = main(argv)
    if code != 0:
        raise SystemExit(f"sculpt exited with {code} on seed {seed} ({phase} phase)")
    config = parse_config(argv)
    folder = unit_dir(config, 70.0) if phase == "unit" else edges_after_units_dir(config, 2.5)
    return json.loads((folder / "metrics.json").read_text())


def row(ours: dict | None, published: dict | None) -> str:
    def text(record, target_key, epoch_key):
        if record is None:
            return "-".center(38)
        if not record.get("trained", True):
            return f"{record[target_key]:9.4f} untried ({'acc' if record['accepted'] else 'rej'})".ljust(38)
        verdict = "acc" if record["accepted"] else "rej"
        kept = record.get("weights_kept")
        return (
            f"{record[target_key]:9.4f} {verdict} w{kept:>4} {record['test_accuracy']:8.4f}%"
            f" e{record[epoch_key]:>2}"
        ).ljust(38)

    left = text(ours, "target_percent", "best_epoch")
    return f"{left} | {text(published, 'target_pruned_percent', 'selected_epoch')}"


def same_try(ours: dict, published: dict) -> bool:
    if abs(ours["target_percent"] - published["target_pruned_percent"]) > 1e-6:
        return False
    if ours.get("trained", True) != published["trained"] or ours["accepted"] != published["accepted"]:
        return False
    return not published["trained"] or ours.get("mask_hex") == published["mask_hex"]


def stream_before(published_steps: list[dict], index: int, phase: str, epochs: int = 40) -> int:
    """int64 draws of the published phase's stream before its try `index` (after the network builds)."""
    trained = sum(1 for s in published_steps[:index] if s["trained"])
    if phase == "unit":
        return 3 * epochs + 1 + trained * (1 + 3 * epochs + 1)  # dense training; per try scoring + training
    return (1 + trained) * (3 * epochs + 1)  # the edge-start retraining, then one training per try


def retrain_from_published(reference: Path, seed: int, phase: str, steps: list[dict], index: int) -> dict:
    """The published try `index` retrained by the replay from the published start network and mask
    (steps.npz), at the published stream position: what the try gives without earlier rounding."""
    import torch

    from models.mlp import MLP
    from utils.published_replay import (
        PublishedStream,
        ReplayOptions,
        apply_masks,
        published_train,
        published_unit_scores,
    )

    folder = reference / f"seed{seed}"
    history = json.loads((folder / "history.json").read_text())
    networks = np.load(folder / "steps.npz")
    outputs = np.load(folder / "published_outputs.npz")
    x = torch.from_numpy(outputs["inputs"]).float()
    y = torch.from_numpy(outputs["targets"]).float()
    arch = history["task"]["arch"]
    step = steps[index]
    model = MLP(arch)
    with torch.no_grad():
        for i, layer in enumerate(model.layers):
            layer.weight.copy_(torch.from_numpy(networks[f"s{step['start']}_weight{i}"]))
            layer.bias.copy_(torch.from_numpy(networks[f"s{step['start']}_bias{i}"]))
    bits = np.unpackbits(networks[f"s{step['n']}_maskbits"]).astype(np.float32)
    masks, offset = [], 0
    for a, b in zip(arch[:-1], arch[1:]):
        masks.append(torch.from_numpy(bits[offset : offset + a * b].reshape(b, a).copy()))
        offset += a * b
    stream = PublishedStream(seed)
    stream.build_network(arch)
    stream.build_network(arch)
    stream.advance(stream_before(steps, index, phase))
    if phase == "unit":
        start_masks = [layer.weight_mask.clone() for layer in model.layers]
        start_bits = np.unpackbits(networks[f"s{step['start']}_maskbits"]).astype(np.float32)
        offset = 0
        for i, (a, b) in enumerate(zip(arch[:-1], arch[1:])):
            start_masks[i] = torch.from_numpy(start_bits[offset : offset + a * b].reshape(b, a).copy())
            offset += a * b
        apply_masks(model, start_masks)
        published_unit_scores(model, x, y, "BCE", stream)
    apply_masks(model, masks)
    options = ReplayOptions(lr=0.1, weight_decay=1e-4, epochs=40, batch_size=8)
    metrics = published_train(model, x, y, options, stream)
    return {"test_accuracy": metrics["test_accuracy"], "best_epoch": metrics["best_epoch"]}


def dense_from_seed(reference: Path, seed: int) -> str:
    """The published dense training replayed from the seed, beside the published dense network: the kept
    epoch, the test accuracy, and the largest weight difference (the rounding of this machine's kernels)."""
    import torch

    from models.mlp import MLP
    from utils.published_replay import PublishedStream, ReplayOptions, published_train

    folder = reference / f"seed{seed}"
    history = json.loads((folder / "history.json").read_text())
    outputs = np.load(folder / "published_outputs.npz")
    arch = history["task"]["arch"]
    stream = PublishedStream(seed)
    weights, _ = stream.build_network(arch)
    model = MLP(arch)
    with torch.no_grad():
        for layer, weight in zip(model.layers, weights):
            layer.weight.copy_(weight)
            layer.bias.zero_()
    x = torch.from_numpy(outputs["inputs"]).float()
    y = torch.from_numpy(outputs["targets"]).float()
    metrics = published_train(
        model, x, y, ReplayOptions(lr=0.1, weight_decay=1e-4, epochs=40, batch_size=8), stream
    )
    with np.load(folder / "dense.npz") as dense:
        gap = max(
            float(np.abs(layer.weight.detach().numpy() - dense[f"weight{i}"]).max())
            for i, layer in enumerate(model.layers)
        )
    dense_step = history["steps"][0]
    same = (
        metrics["best_epoch"] == dense_step["selected_epoch"]
        and metrics["test_accuracy"] == dense_step["test_accuracy"]
    )
    return (
        f"dense training from the seed: epoch {metrics['best_epoch']} {metrics['test_accuracy']:.4f}% vs "
        f"epoch {dense_step['selected_epoch']} {dense_step['test_accuracy']:.4f}%"
        f"{' (same)' if same else ' (DIFFERS)'}, largest weight difference {gap:.1e}"
    )


def compare(reference: Path, seed: int, phase: str, ours: list[dict], published: list[dict]) -> str | None:
    """Print the two searches side by side; return a one-line explanation of the first difference."""
    first = None
    for k in range(max(len(ours), len(published))):
        mine = ours[k] if k < len(ours) else None
        theirs = published[k] if k < len(published) else None
        same = mine is not None and theirs is not None and same_try(mine, theirs)
        print(f"    {k + 1:2d} {'  ' if same else 'XX'} {row(mine, theirs)}")
        if not same and first is None:
            first = k
    if first is None:
        return None
    mine, theirs = (ours + [None])[first], (published + [None])[first]
    if mine is None or theirs is None:
        return f"try {first + 1}: one search ended earlier"
    if abs(mine["target_percent"] - theirs["target_pruned_percent"]) > 1e-6 or not theirs["trained"]:
        targets = f"{mine['target_percent']:.4f} vs {theirs['target_pruned_percent']:.4f}"
        return f"try {first + 1}: another target ({targets})"
    if mine.get("mask_hex") != theirs["mask_hex"]:
        kept = f"{mine.get('weights_kept')} vs {theirs['weights_kept']}"
        return f"try {first + 1}: the cut differs ({kept} weights kept)"
    if mine["test_accuracy"] != theirs["test_accuracy"]:
        check = retrain_from_published(reference, seed, phase, published, first)
        agree = check["test_accuracy"] == theirs["test_accuracy"]
        curves = [
            e
            for e, (a, b) in enumerate(zip(mine["val_loss"], theirs["val_loss"]))
            if abs(a - b) > 1e-5 * max(abs(b), 1e-3)  # beyond 6-digit rounding
        ]
        return (
            f"try {first + 1}: the retraining (same mask and stream position; {mine['test_accuracy']:.4f}% "
            f"epoch {mine['best_epoch']} vs {theirs['test_accuracy']:.4f}% epoch {theirs['selected_epoch']}; "
            f"validation losses part from epoch {curves[0] if curves else '-'}); retrained from the "
            "published "
            f"start network it gives {check['test_accuracy']:.4f}% epoch {check['best_epoch']}"
            + (" = published: rounding carried over from earlier retrainings" if agree else "")
        )
    return f"try {first + 1}: the acceptance test"


def success_from_seed(reference: Path, seeds: list[int], result_path: Path) -> None:
    """Fixed-cell success from each seed: sculpt default, sculpt --recipe published, the published run."""
    from benchmarks.fidelity import detect_and_score
    from main import main as sculpt
    from run.parser import parse_config
    from run.runs import edges_after_units_dir
    from utils.network import LayeredNetwork
    from utils.tasks.ground_truth import ground_truth_for

    counts = {"default": 0, "published": 0, "published code": 0}
    print(f"{'seed':>4} {'sculpt default':>32} {'sculpt --recipe published':>32} {'published code':>24}")
    for seed in seeds:
        cells = []
        for recipe in ("default", "published"):
            argv = CELL.format(root=ROOT).replace("--recipe published", f"--recipe {recipe}").split()
            argv += [
                "--experiment",
                "prune",
                "--seed",
                str(seed),
                "--result_path",
                str(result_path),
                "--quiet",
            ]
            import contextlib
            import io

            with contextlib.redirect_stdout(io.StringIO()):
                codes = [sculpt([*argv, "--prune_units", "1"]), sculpt([*argv, "--prune_units", "0"])]
            if any(codes):
                cells.append(f"exit {codes}")
                continue
            config = parse_config([*argv, "--prune_units", "0"])
            folder = edges_after_units_dir(config, 2.5)
            network = LayeredNetwork.from_state_dict(
                __import__("torch").load(folder / "model.pt", map_location="cpu", weights_only=True),
                str(folder),
            )
            score = detect_and_score(network, ground_truth_for(config), 2)
            counts[recipe] += score["success"]
            units = "-".join(map(str, score["units"][1:-1])) if score["units"] else "-"
            verdict = "ok" if score["success"] else "fail"
            cells.append(f"{verdict} {network.density:.2f}% units {units} {score['n_modules']}m")
        history = json.loads((reference / f"seed{seed}" / "history.json").read_text())
        ok = bool(history["sculpt_score"]["success"])
        counts["published code"] += ok
        units = "-".join(map(str, history["final"]["units_kept"]))
        theirs = f"{'ok' if ok else 'fail'} {history['final']['density_percent']:.2f}% units {units}"
        print(f"{seed:>4} {cells[0]:>32} {cells[1]:>32} {theirs:>24}", flush=True)
    n = len(seeds)
    print(
        f"success: sculpt default {counts['default']}/{n}, "
        f"sculpt --recipe published {counts['published']}/{n}, "
        f"published code {counts['published code']}/{n}"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reference", type=Path, default=DEFAULT_REFERENCE)
    parser.add_argument("--seeds", type=int, nargs="+", default=None, help="default: every seed<N> folder")
    parser.add_argument("--result_path", type=Path, default=Path("/tmp/sculpt_replay_published"))
    parser.add_argument("--quiet", action="store_true", help="no side-by-side rows, only the verdicts")
    parser.add_argument("--success", action="store_true", help="fixed-cell success from each seed instead")
    args = parser.parse_args()
    if not (args.reference / "seed0").is_dir() and args.seeds is None:
        print(f"no reference package at {args.reference}; give --reference DIR", file=sys.stderr)
        return 2
    seeds = args.seeds
    if seeds is None:
        seeds = sorted(int(p.name[4:]) for p in args.reference.glob("seed*") if p.name[4:].isdigit())
    if args.success:
        begin = time.process_time()
        success_from_seed(args.reference, seeds, args.result_path)
        print(f"CPU seconds: {time.process_time() - begin:.1f}")
        return 0
    exact = {"unit": 0, "edge": 0}
    tries = {"unit": Counter(), "edge": Counter()}
    begin = time.process_time()
    for seed in seeds:
        history = json.loads((args.reference / f"seed{seed}" / "history.json").read_text())
        print(f"seed {seed} {dense_from_seed(args.reference, seed)}")
        for phase in ("unit", "edge"):
            metrics = run_phase(args.reference, seed, phase, args.result_path, True)
            ours = metrics["history"]
            published = [s for s in history["steps"] if s["phase"] == phase]
            print(
                f"seed {seed} {phase} phase   ours | published (target %, verdict, weights, accuracy, epoch)"
            )
            if phase == "edge":
                start = metrics["replay"]["start_retraining"]
                theirs = history["edge_phase"]["start_retrain_test_accuracy"]
                print(f"    start retraining: {start['test_accuracy']:.4f}% vs {theirs:.4f}%")
            why = compare(args.reference, seed, phase, ours, published) if not args.quiet else None
            if args.quiet:
                why = (
                    None
                    if all(same_try(a, b) for a, b in zip(ours, published)) and len(ours) == len(published)
                    else "differs"
                )
            exact[phase] += why is None
            print(
                f"  -> seed {seed} {phase} phase: "
                f"{'replayed exactly' if why is None else 'DIFFERS at ' + why}"
            )
            for side, records, key in (
                ("ours", ours, "target_percent"),
                ("published", published, "target_pruned_percent"),
            ):
                for r in records:
                    if r.get("trained", True):
                        tries[phase][(side, round(r[key], 4), r["accepted"])] += 1
    print()
    for phase in ("unit", "edge"):
        print(f"{phase} phase replayed exactly on {exact[phase]}/{len(seeds)} seeds")
        targets = sorted({t for (_, t, _) in tries[phase]})
        for t in targets:
            counts = [
                (
                    tries[phase][(side, t, True)],
                    tries[phase][(side, t, True)] + tries[phase][(side, t, False)],
                )
                for side in ("ours", "published")
            ]
            print(
                f"    target {t:9.4f}%: accepted ours {counts[0][0]}/{counts[0][1]}, "
                f"published {counts[1][0]}/{counts[1][1]}"
            )
    print(f"CPU seconds: {time.process_time() - begin:.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
