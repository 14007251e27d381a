"""--experiment sculpt: train, prune units and edges over the step grids, keep the sparsest network, detect
modules, draw and score them; print a one-line summary. With --seeds S1 S2 ... every seed runs as a member
of one batch and writes the run folders that separate `--seed S` runs would."""

from __future__ import annotations

import copy

from run.common import apply_structure
from run.parser import ConfigError
from run.reporting import reuse_note
from run.study.sculpt import SCULPT_FILE, edges_only, prune_grids, sculpt, sculpt_dir, summary_line
from utils.errors import SculptError


def run(config) -> dict | list[dict]:
    apply_structure(config)
    if config.seeds:
        return _run_seeds(config)
    record = sculpt(config)
    print(summary_line(record) + reuse_note(record))
    if not config.quiet:
        print(f"results -> {sculpt_dir(config)} ({SCULPT_FILE}, modules.json, score.json)")
        print(f"picture -> {record['paths'].get('picture')}")
    return record


def _run_seeds(config) -> list[dict]:
    from run.common import prepare

    configs = []
    for seed in dict.fromkeys(config.seeds):  # unique, in the order given
        one = copy.copy(config)
        one.seed, one.seeds = seed, None
        configs.append(one)
    if not edges_only(config):
        try:  # every search of every seed, batched; a seed that cannot run fails again below, alone
            prune_grids([prepare(c) for c in configs])
        except SculptError:
            pass
    records, failed = [], []
    for one in configs:
        try:
            record = sculpt(one)
        except SculptError as error:
            failed.append(one.seed)
            print(f"seed {one.seed}: failed: {error}")
            continue
        records.append(record)
        print(f"seed {one.seed}: {summary_line(record)}{reuse_note(record)}")
    if failed:
        raise ConfigError(f"seeds {' '.join(map(str, failed))} failed (their sculpt.json says why)")
    return records
