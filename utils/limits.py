"""Size limits checked before anything is allocated (standard library only: the parser uses it).

Every size a user controls (an option, or a number inside a file) is checked here before the arrays it
implies exist: counts against fixed ceilings (`check_count`), memory against what this machine allows
(`check_memory`). A refusal is one line naming the option or file, what it would need and the limit.
"""

from __future__ import annotations

import os

from utils.errors import SculptError


class TooLargeError(SculptError):
    """A size (option or file content) beyond what can be allocated or finished; checked before work."""


GIB = 1 << 30

# Ceilings of counts that cost time or processes rather than memory (far above any published use).
COUNT_LIMITS = {
    "epochs": 10**6,
    "table_repeats": 10**7,
    "images_per_pair": 10**6,
    "batch_size": 1 << 24,
    "num_shuffles": 10**5,
    "num_shuffles_double": 10**5,
    "n_shuffle": 10**6,
    "mc_steps": 500_000,  # ~1 min of one core per layer (about 0.1 ms a step)
    "mc_restarts": 100,
    "stability_seeds": 10**3,
    "n_clusters": 10**5,
    "reg_k": 10**4,
    "feature_step_size": 10**3,
    "clusterability_step_size": 10**3,
    "unit_pruning_iterations": 10**5,
    "pruning_iterations": 10**5,
    "batch_members": 10**4,
    "seeds": 10**3,
    "checkpoint_every": 10**6,
    "normalize_weights_every": 10**9,
    "reg_every": 10**9,
    "prune_every": 10**9,
    "prune_epochs": 10**6,
    "workers": 1024,
    "jobs": 1024,
}
SEED_LIMIT = 2**32 - 1  # numpy's seeds are 32-bit
MAX_INPUTS = 24  # a boolean truth table of n inputs has 2**n rows (the function-graph format allows 24)
MAX_TEXT_BYTES = 256 << 20  # a JSON, edge-list, GraphML or jobs file larger than this is refused


def check_count(option: str, value: int) -> None:
    """TooLargeError naming --option when `value` is past its ceiling in COUNT_LIMITS."""
    limit = COUNT_LIMITS.get(option)
    if limit is not None and value > limit:
        raise TooLargeError(f"--{option} {value} is too large (at most {limit})")


def memory_budget() -> int:
    """Bytes one allocation plan may use: half of the smaller of the available memory and the address-space
    limit (RLIMIT_AS), so the process keeps room for its libraries."""
    limits = []
    try:
        with open("/proc/meminfo") as handle:
            for line in handle:
                if line.startswith("MemAvailable:"):
                    limits.append(int(line.split()[1]) * 1024)
    except (OSError, ValueError, IndexError):
        pass
    try:
        import resource

        soft, _ = resource.getrlimit(resource.RLIMIT_AS)
        if soft not in (resource.RLIM_INFINITY, -1) and soft > 0:
            limits.append(soft)
    except (ImportError, OSError, ValueError):
        pass
    if not limits:
        limits.append(16 * GIB)
    return min(limits) // 2


def human(nbytes: float) -> str:
    for unit, size in (("TiB", 1 << 40), ("GiB", GIB), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if nbytes >= size:
            return f"{nbytes / size:.1f} {unit}"
    return f"{int(nbytes)} B"


def check_memory(nbytes: float, what: str, fix: str) -> None:
    """TooLargeError when `what` would need more than memory_budget() bytes: '<what> needs X, more than the
    Y this machine allows; <fix>'. Call before allocating."""
    budget = memory_budget()
    if nbytes > budget:
        raise TooLargeError(
            f"{what} needs {human(nbytes)}, more than the {human(budget)} this machine allows; {fix}"
        )


def cpu_count() -> int:
    """CPUs this process may run on."""
    try:
        return len(os.sched_getaffinity(0)) or 1
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def dense_parameters(arch) -> int:
    """Weights of a fully connected network with these widths (Python ints: no overflow)."""
    arch = [int(a) for a in arch]
    return sum(a * b for a, b in zip(arch[:-1], arch[1:]))


def check_arch(arch, what: str, fix: str, bytes_per_weight: int = 8) -> None:
    """TooLargeError when the dense weight (and mask) arrays of `arch` would not fit in memory. Training
    needs about 24 bytes a weight (weight, mask, gradient, two optimizer moments, a copy), loading 8."""
    check_memory(dense_parameters(arch) * bytes_per_weight, f"{what} (arch {' '.join(map(str, arch))})", fix)
