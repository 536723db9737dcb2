"""Which days of the year a memory covers, and which earlier year each photo belongs to.

A window is a run of calendar days around "today": the day itself, its Monday-to-Sunday
week, or its calendar month. Earlier years are searched for the same month-days. A week
may straddle New Year (today = Friday 2 January: Monday 29 December to Sunday 4
January); a photo from 30 December 2023 then belongs to the window of 2 January 2024,
so it is grouped under 2024 (two years ago in 2026), not under 2023.
"""

from __future__ import annotations

import calendar
from dataclasses import dataclass
from datetime import date, datetime, timedelta

SPANS = ("day", "week", "month")


def month_day(day: date | datetime) -> int:
    """The key SQL selects on: month * 100 + day (1123 for 23 November)."""
    return day.month * 100 + day.day


@dataclass(frozen=True)
class Window:
    span: str
    today: date
    start: date  # this year's window, first day
    end: date  # ... and last day (inclusive)

    @classmethod
    def around(cls, today: date, span: str) -> Window:
        if span == "day":
            return cls(span, today, today, today)
        if span == "week":
            monday = today - timedelta(days=today.weekday())
            return cls(span, today, monday, monday + timedelta(days=6))
        if span == "month":
            last = calendar.monthrange(today.year, today.month)[1]
            return cls(span, today, today.replace(day=1), today.replace(day=last))
        raise ValueError(f"unknown span {span!r}")

    @property
    def start_md(self) -> int:
        return month_day(self.start)

    @property
    def end_md(self) -> int:
        return month_day(self.end)

    @property
    def wraps(self) -> bool:
        """The window crosses New Year: its month-days are two ranges, Dec and Jan."""
        return self.start.year != self.end.year

    @property
    def starts_at(self) -> datetime:
        """Anything taken from here on is this year's (or later), not a memory."""
        return datetime.combine(self.start, datetime.min.time())

    def anniversary(self, taken: datetime) -> int:
        """The year whose "today" this photo's window belongs to.

        In a wrapping window the December part lies ``today.year - start.year`` years
        before the anniversary and the January part ``today.year - end.year`` years.
        """
        if self.wraps and month_day(taken) < self.start_md:
            return taken.year + (self.today.year - self.end.year)
        return taken.year + (self.today.year - self.start.year)
