"""Statistics of censored times: the Kaplan-Meier survival curve, its median, and the empirical CDF.

An escape-time experiment stops each trial after a step budget: a trial that has not escaped by then is
*censored* (we only know its escape time exceeds the budget) and must not be counted as escaping at the budget.
The Kaplan-Meier estimator (Kaplan & Meier 1958) handles this:

    S(t) = prod_{t_j <= t} (1 - e_j / n_j)

where the t_j are the distinct observed event times, e_j the number of events at t_j and n_j the number of
trials still at risk just before t_j (neither escaped nor censored earlier). The median is the first t with
S(t) <= 1/2, and infinite when fewer than half the trials escaped. A trial censored at time c counts as at
risk at every t_j <= c (the usual convention: events before censoring at equal times).
"""

import numpy as np


def _arrays(times, observed):
    times = np.asarray(times, dtype=np.float64).reshape(-1)
    observed = np.asarray(observed, dtype=bool).reshape(-1)
    if times.shape != observed.shape:
        raise ValueError(f"times and observed must have the same length, got {times.size} and {observed.size}")
    if times.size and not np.all(np.isfinite(times)):
        raise ValueError("times must be finite (a censored trial carries its censoring time, not inf or NaN)")
    return times, observed


def kaplan_meier(times, observed):
    """The Kaplan-Meier survival curve: ``(event_times, survival)``, S just after each distinct event time.

    ``times``: the escape time of an observed trial, the censoring time of a censored one; ``observed``: True
    where the trial escaped. Returns two empty arrays when nothing was observed.
    """
    times, observed = _arrays(times, observed)
    event_times = np.unique(times[observed])
    if event_times.size == 0:
        return event_times, np.ones(0)
    sorted_times = np.sort(times)
    # at risk just before t_j: trials whose time (event or censoring) is >= t_j
    at_risk = times.size - np.searchsorted(sorted_times, event_times, side="left")
    events = np.searchsorted(np.sort(times[observed]), event_times, side="right") - np.searchsorted(
        np.sort(times[observed]), event_times, side="left"
    )
    survival = np.cumprod(1.0 - events / at_risk)
    return event_times, survival


def survival_at(times, observed, t):
    """S(t) of the Kaplan-Meier curve at the times ``t`` (1 before the first event)."""
    event_times, survival = kaplan_meier(times, observed)
    t = np.asarray(t, dtype=np.float64)
    index = np.searchsorted(event_times, t, side="right")
    padded = np.concatenate([[1.0], survival])
    return padded[index]


def km_median(times, observed):
    """The Kaplan-Meier median: the first event time with S(t) <= 1/2; ``inf`` when S never falls that low."""
    event_times, survival = kaplan_meier(times, observed)
    below = np.nonzero(survival <= 0.5)[0]
    return float(event_times[below[0]]) if below.size else float("inf")


def km_quantile(times, observed, q):
    """The Kaplan-Meier q-quantile: the first event time with 1 - S(t) >= q; ``inf`` when never reached."""
    if not 0.0 < q < 1.0:
        raise ValueError(f"q must lie in (0, 1), got {q!r}")
    event_times, survival = kaplan_meier(times, observed)
    reached = np.nonzero(1.0 - survival >= q - 1e-12)[0]
    return float(event_times[reached[0]]) if reached.size else float("inf")


def ecdf(times, observed=None):
    """The empirical CDF of the observed times over ALL trials: ``(sorted_times, fraction)``.

    Censored trials stay in the denominator, so the curve tops out at the fraction that escaped (the natural
    picture when every trial shares one budget; there it equals 1 - Kaplan-Meier).
    """
    times = np.asarray(times, dtype=np.float64).reshape(-1)
    observed = np.ones(times.shape, bool) if observed is None else np.asarray(observed, dtype=bool).reshape(-1)
    kept = np.sort(times[observed])
    return kept, np.arange(1, kept.size + 1) / max(times.size, 1)
