"""--experiment summarize: collect every sculpt run under --result_path into summary.csv and
success_rates.csv (in --summary_path, default --result_path) and one success-rate PNG per family under
--visualization_path. The logic lives in run/study/summary.py and detection_pipeline/success_plots.py."""

from __future__ import annotations

from run.study.summary import summarize


def run(config):
    result = summarize(config.result_path, config.summary_path, config.visualization_path)
    failed = sum(row["status"] != "ok" for row in result.rows)
    print(
        f"{len(result.rows)} runs ({failed} not ok: failed, unreadable or unfinished) in "
        f"{len(result.rates)} family x task x depth groups"
    )
    for path in result.files:
        print(f"wrote {path}")
    return result
