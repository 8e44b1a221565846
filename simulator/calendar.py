"""When sessions happen: busier weekday evenings and weekends, quieter US holidays."""

from __future__ import annotations

import datetime as dt
import math
import random

# Relative volume by weekday (Monday first), normalised to a mean of 1.
_RAW_VOLUME = (1.0, 1.0, 1.0, 0.95, 0.7, 1.25, 1.1)
WEEKDAY_VOLUME = tuple(v / (sum(_RAW_VOLUME) / 7) for v in _RAW_VOLUME)
HOLIDAY_VOLUME = 0.35
# Local start hours and their weights: after school on weekdays, daytime at weekends.
WEEKDAY_HOURS = (tuple(range(7, 22)), (1, 1, 1, 1, 1, 1, 1, 2, 4, 7, 9, 10, 9, 6, 3))
WEEKEND_HOURS = (tuple(range(8, 21)), (2, 4, 6, 7, 7, 6, 6, 6, 5, 4, 3, 2, 1))


def _nth_weekday(year: int, month: int, weekday: int, n: int) -> dt.date:
    first = dt.date(year, month, 1)
    return first + dt.timedelta(days=(weekday - first.weekday()) % 7 + 7 * (n - 1))


def _last_weekday(year: int, month: int, weekday: int) -> dt.date:
    last = dt.date(year + month // 12, month % 12 + 1, 1) - dt.timedelta(days=1)
    return last - dt.timedelta(days=(last.weekday() - weekday) % 7)


def us_holidays(year: int) -> set[dt.date]:
    thanksgiving = _nth_weekday(year, 11, 3, 4)
    return {
        dt.date(year, 1, 1), _nth_weekday(year, 1, 0, 3), _nth_weekday(year, 2, 0, 3), _last_weekday(year, 5, 0),
        dt.date(year, 6, 19), dt.date(year, 7, 4), _nth_weekday(year, 9, 0, 1), thanksgiving,
        thanksgiving + dt.timedelta(days=1), dt.date(year, 12, 24), dt.date(year, 12, 25), dt.date(year, 12, 31),
    }


def day_volume(day: dt.date) -> float:
    """Expected share of an average day's sessions held on ``day``."""
    factor = WEEKDAY_VOLUME[day.weekday()]
    return factor * HOLIDAY_VOLUME if day in us_holidays(day.year) else factor


def start_hour(day: dt.date, rng: random.Random) -> int:
    hours, weights = WEEKEND_HOURS if day.weekday() >= 5 else WEEKDAY_HOURS
    return rng.choices(hours, weights)[0]


def poisson(mean: float, rng: random.Random) -> int:
    """A Poisson draw: exact for small means, normal approximation for large ones."""
    if mean > 50:
        return max(0, round(rng.gauss(mean, math.sqrt(mean))))
    limit, k, product = math.exp(-mean), 0, rng.random()
    while product > limit:
        k += 1
        product *= rng.random()
    return k
