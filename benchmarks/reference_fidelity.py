"""How often our module detection reproduces the published partitions exactly (up to relabelling).

    python3 benchmarks/reference_fidelity.py [--reference ../shared/reference] [--limit N] [--family F]

Runs detection with the published settings (outgoing, cosine, average, modularity-metric, compare_expected,
feature_step_size = clusterability_step_size = len(arch) - 1, mm_threshold 0.2, merging threshold 0.9,
unweighted) on every network in models/index.json and compares with its `anchor_partition`: an exact match
means the same dropped units and the same grouping of the rest. Prints the rate overall and per family,
then each mismatch. Exit code 1 when the reference folder is missing.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import defaultdict
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from detection_pipeline.detect import DetectionOptions, detect_modules  # noqa: E402
from utils.network_files import load_published_npz  # noqa: E402

DEFAULT_REFERENCE = Path(__file__).resolve().parents[2] / "shared" / "reference"


def published_options(arch: list[int]) -> DetectionOptions:
    """The detection settings the published partitions were made with."""
    steps = len(arch) - 1
    return DetectionOptions(feature_step_size=steps, clusterability_step_size=steps)


def canonical(partition: np.ndarray) -> np.ndarray:
    """Relabel module ids by first appearance (-1 kept), so equal partitions compare equal."""
    out = np.full(len(partition), -1, dtype=np.int64)
    mapping: dict[int, int] = {}
    for idx in np.flatnonzero(partition >= 0):
        out[idx] = mapping.setdefault(int(partition[idx]), len(mapping))
    return out


def same_partition(a: np.ndarray, b: np.ndarray) -> bool:
    """Equal up to relabelling: same dropped units and the same grouping of the others."""
    return a.shape == b.shape and bool(np.array_equal(canonical(a), canonical(b)))


def describe(ours: np.ndarray, theirs: np.ndarray, arch: list[int]) -> str:
    """A short account of how two partitions differ, layer by layer."""
    parts = []
    bounds = np.cumsum([0] + list(arch))
    for layer in range(len(arch)):
        a, b = ours[bounds[layer] : bounds[layer + 1]], theirs[bounds[layer] : bounds[layer + 1]]
        if not np.array_equal(a < 0, b < 0):
            parts.append(
                f"L{layer} dropped ours={np.flatnonzero(a < 0).tolist()} ref={np.flatnonzero(b < 0).tolist()}"
            )
    if not parts:
        parts.append(f"grouping: ours={canonical(ours).tolist()} ref={canonical(theirs).tolist()}")
    return "; ".join(parts)


def check(entry: dict, reference: Path) -> tuple[bool, str]:
    """Run one network; returns (match, note)."""
    net = load_published_npz(reference / entry["file"])
    modules = detect_modules(net.masks, published_options(net.arch))
    ok = same_partition(modules.labels, net.metrics["anchor_partition"])
    return ok, "" if ok else describe(modules.labels, net.metrics["anchor_partition"], net.arch)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reference", type=Path, default=DEFAULT_REFERENCE)
    parser.add_argument("--limit", type=int, default=None, help="only the first N networks")
    parser.add_argument("--family", default=None, help="only this family")
    parser.add_argument("--json", type=Path, default=None, help="also write the results here")
    args = parser.parse_args(argv)
    index_path = args.reference / "models" / "index.json"
    if not index_path.is_file():
        print(f"reference index {index_path} not found; pass --reference", file=sys.stderr)
        return 1
    entries = json.loads(index_path.read_text())
    if args.family:
        entries = [e for e in entries if e["family"] == args.family]
    entries = entries[: args.limit]

    per_family: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    mismatches = []
    start = time.perf_counter()
    for entry in entries:
        ok, note = check(entry, args.reference)
        per_family[entry["family"]][0] += ok
        per_family[entry["family"]][1] += 1
        if not ok:
            mismatches.append({"file": entry["file"], "arch": entry["arch"], "note": note})
    elapsed = time.perf_counter() - start

    matched = sum(m for m, _ in per_family.values())
    total = sum(n for _, n in per_family.values())
    print(f"exact match: {matched}/{total} = {100.0 * matched / max(total, 1):.2f}%  ({elapsed:.1f} s)")
    for family, (m, n) in sorted(per_family.items()):
        print(f"  {family:34s} {m:4d}/{n:<4d} {100.0 * m / n:6.2f}%")
    for item in mismatches:
        print(f"MISMATCH {item['file']} arch={item['arch']}: {item['note']}")
    if args.json:
        args.json.write_text(
            json.dumps(
                {"matched": matched, "total": total, "per_family": per_family, "mismatches": mismatches}
            )
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
