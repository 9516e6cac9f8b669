"""Reading the time bounds users give (ISO dates or datetimes) into UTC instants, with errors that say what to
write instead."""

import datetime


def parse_bound(
    value: str | datetime.date | datetime.datetime | None, name: str, *, end: bool = False
) -> datetime.datetime | None:
    """A bound as an aware UTC datetime. A date alone means its whole day: its start, or (``end``) the next day's
    start, since end bounds are exclusive instants. Naive datetimes are read as UTC."""
    if value is None or value == "":
        return None
    if isinstance(value, str):
        try:
            value = datetime.date.fromisoformat(value) if len(value) == 10 else datetime.datetime.fromisoformat(value)
        except ValueError:
            raise ValueError(
                f"{name}={value!r} is not an ISO date or datetime; write e.g. 2026-11-01 or 2026-11-01T12:00:00+00:00"
            ) from None
    if not isinstance(value, datetime.datetime):
        moment = datetime.datetime.combine(value, datetime.time(), datetime.UTC)
        return moment + datetime.timedelta(days=1) if end else moment
    return value.replace(tzinfo=datetime.UTC) if value.tzinfo is None else value.astimezone(datetime.UTC)


def check_order(start: datetime.datetime | None, end: datetime.datetime | None, start_name: str, end_name: str) -> None:
    if start is not None and end is not None and end <= start:
        raise ValueError(
            f"{end_name} ({end.isoformat()}) is not after {start_name} ({start.isoformat()}); swap "
            "them or widen the range"
        )


def month_range(month: str) -> tuple[datetime.date, datetime.date]:
    """``YYYY-MM`` as its first and last day."""
    try:
        first = datetime.date.fromisoformat(f"{month}-01")
    except ValueError:
        raise ValueError(f"month {month!r} is not YYYY-MM (e.g. 2026-11)") from None
    following = (first.replace(day=28) + datetime.timedelta(days=4)).replace(day=1)
    return first, following - datetime.timedelta(days=1)
