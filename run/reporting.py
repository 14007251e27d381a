"""One-line results printed at the end of experiments. --quiet silences progress bars only: every command
still prints its one-line result."""


def progress_bar(config, total: int, desc: str):
    """A tqdm bar, or a silent stand-in with --quiet (here, not in run/common.py, so that commands without
    torch do not import it)."""
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, disable=bool(config.quiet), leave=False, dynamic_ncols=True)


def reuse_note(metrics: dict) -> str:
    """' (reused the finished run <dir>; add --force to redo it)' for a run loaded instead of computed."""
    where = metrics.get("_reused")
    return f"  (reused the finished run {where}; add --force to redo it)" if where else ""


def print_pruned(config, label: str, metrics: dict) -> None:
    units = " ".join(str(u) for u in metrics.get("units_kept", []))
    print(
        f"{label}: test accuracy {metrics['test_accuracy']:.2f}%  density {metrics['density']:.2f}%  "
        f"units {units}{reuse_note(metrics)}"
    )
