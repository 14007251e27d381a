"""`clusterability` with default options on every published network of the reference (a check, not a timing).

For each ../shared/reference/models/**/*.npz (skipped when absent): `main.main(["--experiment",
"clusterability", "--checkpoint", FILE, "--workers", "1", "--quiet", ...])` in this process, into a temporary
--result_path. Prints how many ran (exit 0), how many needed a redrawn shuffle, the failures with their
message, and the CPU seconds (time.process_time, this process: the machine may be shared).

    python3 benchmarks/clusterability_published.py [--limit N] [--num_shuffles 100]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
MODELS = ROOT.parent / "shared" / "reference" / "models"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--limit", type=int, default=0, help="only the first N networks (0: all)")
    parser.add_argument("--num_shuffles", type=int, default=100)
    args = parser.parse_args()
    if not MODELS.is_dir():
        print(f"skipped: {MODELS} is absent")
        return 0
    import main as sculpt

    files = sorted(MODELS.rglob("*.npz"))[: args.limit or None]
    ran, redrawn, failed = 0, 0, []
    start = time.process_time()
    with tempfile.TemporaryDirectory() as tmp:
        for i, path in enumerate(files):
            argv = [
                "--experiment", "clusterability", "--checkpoint", str(path), "--workers", "1", "--quiet",
                "--num_shuffles", str(args.num_shuffles), "--result_path", f"{tmp}/r",
                "--visualization_path", f"{tmp}/v",
            ]  # fmt: skip
            err = io.StringIO()
            with contextlib.redirect_stdout(io.StringIO()) as out, contextlib.redirect_stderr(err):
                rc = sculpt.main(argv)
            if rc == 0:
                ran += 1
                result = json.loads(_result(out.getvalue()))
                redrawn += any(s.get("redrawn") for s in result["shuffles"].values())
            else:
                failed.append((path.relative_to(MODELS), err.getvalue().strip()))
            if (i + 1) % 50 == 0:
                print(f"{i + 1}/{len(files)}: ran {ran}, failed {len(failed)}", flush=True)
    seconds = time.process_time() - start
    print(
        f"clusterability (defaults, {args.num_shuffles} shuffles): ran on {ran}/{len(files)} published "
        f"networks, {redrawn} with a redrawn shuffle, {len(failed)} failed; {seconds:.0f} CPU s"
    )
    for name, message in failed:
        print(f"  {name}: {message}")
    return 1 if failed else 0


def _result(printed: str) -> str:
    """The clusterability.json named on the result line, read."""
    return Path(printed.strip().splitlines()[-1].rsplit(" -> ", 1)[1]).read_text()


if __name__ == "__main__":
    raise SystemExit(main())
