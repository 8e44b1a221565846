"""The evidence flag policy: how sure are we that a tutor's rate is above the threshold?

Each window's counts update a beta prior (the population's rate, ``prior_mean``, worth
``prior_strength`` sessions) into a posterior for the tutor's rate. A flag is raised when
some window makes us at least ``confidence`` sure the rate is above the threshold, and
clears when no window leaves even odds that it is above the clear threshold. A short
window catches a recent deterioration as soon as there are sessions enough to see it; a
long one catches a chronic problem in a tutor with few sessions. A window is overruled
when a more recent one of a fortnight or more is ``confidence`` sure the rate is now below
the clear threshold, so a tutor who recovered is not held to their old sessions.

Measured against the simulator's truth (docs/flag-policies.md): at 35 sessions a day the
prior keeps moderate tutors with an unlucky fortnight unflagged; at 3,000 a day the
two-day window flags a deterioration a median 7 days after it begins.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Mapping
from dataclasses import dataclass

EVIDENCE_WINDOWS = (2, 14, 30, 90)  # days: the shortest first
EVEN_ODDS = 0.5
OVERRULE_MIN_DAYS = 14  # a clean day or two says little: only a fortnight or more overrules older evidence


@dataclass(frozen=True)
class WindowEvidence:
    """One window's counts and what they say: the probabilities (0-1) that the rate is above the
    threshold and above the clear threshold, and the posterior mean rate (0-1)."""

    days: int
    events: int
    base: int
    above: float
    above_clear: float
    mean: float


@dataclass(frozen=True)
class EvidenceVerdict:
    """The flag, the code of the condition that decided it, the window it rests on, and the more recent
    window that overruled a longer one's evidence (if any)."""

    flagged: bool
    decision: str
    deciding: WindowEvidence
    overruled_by: WindowEvidence | None = None


def weigh(counted: Mapping[int, tuple[int, int]], threshold: float, clear_threshold: float, prior_mean: float,
          prior_strength: float) -> list[WindowEvidence]:
    """Every window's evidence, shortest first; rates and thresholds in percent, counts as (events, base)."""
    return [WindowEvidence(days, *counted[days],
                           *_posterior(*counted[days], threshold, clear_threshold, prior_mean, prior_strength))
            for days in sorted(counted)]


@functools.lru_cache(maxsize=1 << 16)
def _posterior(events: int, base: int, threshold: float, clear_threshold: float, prior_mean: float,
               prior_strength: float) -> tuple[float, float, float]:
    """(P above the threshold, P above the clear threshold, posterior mean): the same few counts recur across
    tutors and days, so each is computed once."""
    a = prior_strength * prior_mean / 100 + events
    b = prior_strength * (1 - prior_mean / 100) + base - events
    return beta_above(threshold / 100, a, b), beta_above(clear_threshold / 100, a, b), a / (a + b)


def decide_evidence(evidence: list[WindowEvidence], was_flagged: bool, confidence: float,
                    min_sessions: int) -> EvidenceVerdict:
    """Raise when a window not overruled is ``confidence`` sure (0-1) the rate is above the threshold; keep a
    flag while one leaves even odds that it is above the clear threshold. A window needs ``min_sessions``."""
    usable, overruled_by = [], None
    for window in evidence:
        usable.append(window)
        if window.days >= OVERRULE_MIN_DAYS and window.base >= min_sessions and window.above_clear < 1 - confidence:
            overruled_by = window  # recent sessions say it is below the clear threshold: longer windows are history
            break
    counted = [w for w in usable if w.base >= min_sessions]
    if not counted:
        return EvidenceVerdict(False, "too_few_sessions", max(evidence, key=lambda w: (w.base, w.days)))
    strongest = max(counted, key=lambda w: (w.above, -w.days))
    if was_flagged:
        holding = max(counted, key=lambda w: (w.above_clear, -w.days))
        if holding.above_clear >= EVEN_ODDS:
            return EvidenceVerdict(True, "evidence_still_above_clear", holding)
        return EvidenceVerdict(False, "evidence_below_clear", overruled_by or holding, overruled_by)
    if strongest.above >= confidence:
        return EvidenceVerdict(True, "evidence_above_threshold", strongest)
    later = [w for w in evidence if w.days > (overruled_by.days if overruled_by else math.inf)
             and w.base >= min_sessions and w.above >= confidence]
    if overruled_by and later:
        return EvidenceVerdict(False, "evidence_overruled_by_recent", later[0], overruled_by)
    return EvidenceVerdict(False, "evidence_not_above_threshold", strongest)


def beta_above(x: float, a: float, b: float) -> float:
    """P(X > x) for X ~ Beta(a, b)."""
    return 1.0 - beta_cdf(x, a, b)


def beta_cdf(x: float, a: float, b: float) -> float:
    """The regularized incomplete beta function I_x(a, b), by its continued fraction (Lentz's method)."""
    if x <= 0.0:
        return 0.0
    if x >= 1.0:
        return 1.0
    log_front = (math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log1p(-x))
    if x < (a + 1) / (a + b + 2):
        return math.exp(log_front) * _fraction(x, a, b) / a
    return 1.0 - math.exp(log_front) * _fraction(1.0 - x, b, a) / b


def _fraction(x: float, a: float, b: float) -> float:
    tiny = 1e-300
    c, d = 1.0, 1.0 - (a + b) * x / (a + 1)
    d = 1.0 / (d if abs(d) > tiny else tiny)
    result = d
    for m in range(1, 400):
        for numerator in (m * (b - m) * x / ((a + 2 * m - 1) * (a + 2 * m)),
                          -(a + m) * (a + b + m) * x / ((a + 2 * m) * (a + 2 * m + 1))):
            d = 1.0 + numerator * d
            d = 1.0 / (d if abs(d) > tiny else tiny)
            c = 1.0 + numerator / c
            c = c if abs(c) > tiny else tiny
            result *= d * c
        if abs(d * c - 1.0) < 1e-12:
            break
    return result


def fit_prior(counts: list[tuple[int, int]], min_base: int = 5) -> tuple[float, float] | None:
    """The population's beta prior from each tutor's (events, base), by the method of moments: (mean in percent,
    strength in sessions), within the settings' ranges. The spread of the tutors' rates, less what sampling
    alone explains, is the spread of their true rates. ``None`` with fewer than ten tutors of ``min_base``, or
    no spread beyond sampling.

    With n_i sessions, N in all and k tutors, Q = sum n_i (rate_i - mean)^2 has expectation
    var (N - sum n_i^2 / N - (k - 1)) + mean (1 - mean) (k - 1), which gives the true rates' variance.
    """
    kept = [(e, n) for e, n in counts if n >= min_base]
    if len(kept) < 10:
        return None
    k, total_base = len(kept), sum(n for _, n in kept)
    mean = sum(e for e, _ in kept) / total_base
    if not 0 < mean < 1:
        return None
    spread = sum(n * (e / n - mean) ** 2 for e, n in kept)
    weight = total_base - sum(n * n for _, n in kept) / total_base - (k - 1)
    variance = (spread - mean * (1 - mean) * (k - 1)) / weight if weight > 0 else 0.0
    if variance <= 0:
        return None
    strength = mean * (1 - mean) / variance - 1
    return round(min(99.9, max(0.1, 100 * mean)), 2), round(min(1000.0, max(0.1, strength)), 1)
