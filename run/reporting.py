"""One-line summaries printed at the end of experiments (silenced by --quiet)."""


def print_pruned(config, label: str, metrics: dict) -> None:
    if config.quiet:
        return
    units = " ".join(str(u) for u in metrics.get("units_kept", []))
    print(
        f"{label}: test accuracy {metrics['test_accuracy']:.2f}%  density {metrics['density']:.2f}%  "
        f"units {units}"
    )
