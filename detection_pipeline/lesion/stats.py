"""Statistics of lesion damage (docs/lesion.md): accuracy drops per output, their mean and spread, the
permutation p-value against random controls (also for the plain range of the drops, which unlike
range / mean does not blow up for lesions that barely hurt), Fisher's combination and the effect factor.

drops: float64 (draws, outputs) in percentage points (accuracy before − after), NaN for an output that no
test sample measures (a class absent from the test set). Row 0 is the true lesion, rows 1.. the controls.
"""

from __future__ import annotations

import numpy as np


def drops_from_counts(base: np.ndarray, lesioned: np.ndarray, totals: np.ndarray) -> np.ndarray:
    """base (outputs,) and lesioned (draws, outputs) int correct counts, totals (outputs,) -> drops (pp)."""
    with np.errstate(invalid="ignore", divide="ignore"):
        drop = 100.0 * (base[None, :] - lesioned).astype(np.float64) / totals[None, :]
    drop[:, totals == 0] = np.nan
    return drop


def mean_drop(drops: np.ndarray) -> np.ndarray:
    """(draws,) mean drop over the measured outputs."""
    return np.nanmean(drops, axis=1)


def spread(drops: np.ndarray) -> np.ndarray:
    """(draws,) range / mean of the per-output drops: how unevenly a lesion hits the outputs.

    0 when every output drops the same; +inf when the mean drop is ≤ 0 but the drops differ (a lesion that
    helps some outputs and hurts others, or hurts on balance nothing, is as uneven as it gets).
    """
    mean = mean_drop(drops)
    width = np.nanmax(drops, axis=1) - np.nanmin(drops, axis=1)
    out = np.zeros_like(mean)
    positive = mean > 0
    out[positive] = width[positive] / mean[positive]
    out[~positive & (width > 0)] = np.inf
    return out


def drop_range(drops: np.ndarray) -> np.ndarray:
    """(draws,) max − min of the per-output drops (pp): the unevenness without dividing by the mean."""
    return np.nanmax(drops, axis=1) - np.nanmin(drops, axis=1)


def p_value(true: float, random: np.ndarray) -> float:
    """(#{random ≥ true} + 1) / (N + 1): small when the true lesion scores above nearly every control."""
    random = np.asarray(random, dtype=np.float64)
    return float((np.count_nonzero(random >= true) + 1) / (len(random) + 1))


def p_below(true: float, random: np.ndarray) -> float:
    """(#{random ≤ true} + 1) / (N + 1): small when the true lesion does less harm than nearly every control
    (for a conditional lesion: the second sub-module's damage is already done by the first)."""
    random = np.asarray(random, dtype=np.float64)
    return float((np.count_nonzero(random <= true) + 1) / (len(random) + 1))


def dependence(conditional: float, alone: float) -> float | None:
    """1 − damage of B with A lesioned / damage of B alone: 1 when A's lesion already does all B's damage
    (B depends on A, or they are redundant), 0 when independent; None when B alone does no harm."""
    if not alone > 0:
        return None
    return float(1.0 - conditional / alone)


def effect(true: float, random: np.ndarray) -> float | None:
    """Mean random damage / true damage (below 1: the true lesion does more harm); None when the true
    lesion does no harm."""
    if not true > 0:
        return None
    return float(np.mean(random) / true)


def fisher(p_values) -> float | None:
    """Fisher's method over independent p-values (scipy); None for none."""
    p_values = [p for p in p_values if p is not None]
    if not p_values:
        return None
    from scipy.stats import combine_pvalues

    return float(combine_pvalues(p_values, method="fisher").pvalue)


def finite_or_none(value) -> float | None:
    """JSON-safe float: None for NaN and infinities."""
    value = float(value)
    return value if np.isfinite(value) else None


def conditional_summary(drops: np.ndarray, alone: float) -> dict:
    """summary() of a conditional test plus p_below (true extra damage below the controls') and dependence
    on the first lesion; alone = mean drop of the second sub-module lesioned by itself."""
    means = mean_drop(drops)
    return {
        **summary(drops),
        "p_below": p_below(means[0], means[1:]),
        "dependence": dependence(means[0], alone),
    }


def summary(drops: np.ndarray) -> dict:
    """Statistics of one test: drops (1 + N, outputs), row 0 the true lesion."""
    means, spreads, ranges = mean_drop(drops), spread(drops), drop_range(drops)
    return {
        "mean_drop": finite_or_none(means[0]),
        "spread": finite_or_none(spreads[0]),
        "range": finite_or_none(ranges[0]),
        "random_mean": finite_or_none(np.mean(means[1:])),
        "random_std": finite_or_none(np.std(means[1:])),
        "p_mean": p_value(means[0], means[1:]),
        "p_spread": p_value(spreads[0], spreads[1:]),
        "p_range": p_value(ranges[0], ranges[1:]),
        "effect": effect(means[0], means[1:]),
    }
