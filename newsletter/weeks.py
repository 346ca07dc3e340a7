"""ISO weeks and the window of articles each weekly issue covers."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from newsletter.models import Newsletter

_WEEK = re.compile(r"^(\d{4})-W(\d{2})$")


@dataclass(frozen=True, order=True)
class IsoWeek:
    year: int
    week: int

    @classmethod
    def parse(cls, value: str) -> IsoWeek:
        """Return the week written as YYYY-Www; raise ValueError naming the format otherwise."""
        match = _WEEK.match(value.strip())
        if not match:
            raise ValueError(f"{value!r} is not an ISO week: write it as YYYY-Www, e.g. 2026-W48.")
        year, week = int(match.group(1)), int(match.group(2))
        try:
            date.fromisocalendar(year, week, 1)
        except ValueError:
            raise ValueError(f"{value!r} is not a week of {year}.") from None
        return cls(year, week)

    @classmethod
    def of(cls, moment: date) -> IsoWeek:
        year, week, _ = moment.isocalendar()
        return cls(year, week)

    def monday(self) -> date:
        return date.fromisocalendar(self.year, self.week, 1)

    def __str__(self) -> str:
        return f"{self.year}-W{self.week:02d}"


def send_moment(newsletter: Newsletter, week: IsoWeek) -> datetime:
    """Return when `newsletter` goes out in `week`: its weekday and time, in its time zone."""
    day = week.monday() + timedelta(days=newsletter.send_weekday)
    return datetime.combine(day, newsletter.send_time, tzinfo=newsletter.tz)


def issue_window(
    newsletter: Newsletter, week: IsoWeek, *, after: datetime | None = None
) -> tuple[datetime, datetime]:
    """Return the span an issue of `week` covers, ending at that week's send moment.

    It starts at `after`, the previous issue's cutoff (the moment up to which that
    issue gathered articles, however early it went out), so nothing published between
    two issues falls through the gap; the first issue of a newsletter covers the
    seven days before its send moment.
    """
    end = send_moment(newsletter, week)
    return (after if after is not None else end - timedelta(days=7)), end


def current_week(newsletter: Newsletter, now: datetime) -> IsoWeek:
    return IsoWeek.of(now.astimezone(newsletter.tz).date())
