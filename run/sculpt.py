"""--experiment sculpt: train, prune units and edges over the step grids, keep the sparsest network, detect
modules, draw and score them; print a one-line summary."""

from run.common import apply_structure
from run.study.sculpt import SCULPT_FILE, sculpt, sculpt_dir, summary_line


def run(config) -> dict:
    apply_structure(config)
    record = sculpt(config)
    print(summary_line(record))
    if not config.quiet:
        print(f"results -> {sculpt_dir(config)} ({SCULPT_FILE}, modules.json, score.json)")
        print(f"picture -> {record['paths'].get('picture')}")
    return record
