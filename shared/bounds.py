"""Bounds on every date, instant and integer a request carries, so that no value can make a request expensive
or crash the database driver (issue 13, "no request may hold a worker").

Use these types for every query, path and body parameter of that kind instead of a bare `date`, `datetime` or
`int`: a value outside the bounds is a 422 problem+json naming the field and the rule (`date_range`,
`less_than_equal`, …), never a 500 and never minutes of counting working days to the year 9999.
`tests/security/test_bounds.py` walks every service's OpenAPI and fails on an unbounded parameter."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Annotated, Any

import annotated_types as at
from pydantic import AfterValidator, GetJsonSchemaHandler
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import PydanticCustomError, core_schema

#: The years the platform serves: every working-day calendar, deadline and report lies inside them.
MIN_YEAR, MAX_YEAR = 2000, 2100
MIN_DATE, MAX_DATE = date(MIN_YEAR, 1, 1), date(MAX_YEAR, 12, 31)

#: Row ids and counters: the largest integer a JSON number carries exactly (and far below SQL's BIGINT).
MAX_ID = 2**53
#: Version numbers and other small counters stored in a 32-bit INTEGER column.
MAX_INT32 = 2**31 - 1


def _check_date(value: date) -> date:
    if not MIN_DATE <= value <= MAX_DATE:
        raise PydanticCustomError(
            "date_range", "Dates must lie in the supported years {min_year}–{max_year}.",
            {"min_year": MIN_YEAR, "max_year": MAX_YEAR},
        )
    return value


def _check_instant(value: datetime) -> datetime:
    # The year as written (with its offset): 2000-01-01T00:00+08:00 is inside, although it is 1999 in UTC.
    if not MIN_YEAR <= value.year <= MAX_YEAR:
        raise PydanticCustomError(
            "date_range", "Instants must lie in the supported years {min_year}–{max_year}.",
            {"min_year": MIN_YEAR, "max_year": MAX_YEAR},
        )
    return value


@dataclass(frozen=True)
class _DocumentedRange:
    """Writes the range into the JSON Schema (`formatMinimum`/`formatMaximum`, as JSON Schema validators know
    them), so clients and fuzzers see it."""

    low: str
    high: str

    def __get_pydantic_json_schema__(
        self, schema: core_schema.CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        out: dict[str, Any] = handler(schema)
        out.update({"formatMinimum": self.low, "formatMaximum": self.high})
        return out


#: A calendar date in 2000-01-01 … 2100-12-31.
BoundedDate = Annotated[date, AfterValidator(_check_date), _DocumentedRange(MIN_DATE.isoformat(), MAX_DATE.isoformat())]
#: An instant whose year is 2000 … 2100.
BoundedInstant = Annotated[
    datetime, AfterValidator(_check_instant),
    _DocumentedRange(f"{MIN_DATE.isoformat()}T00:00:00+14:00", f"{MAX_DATE.isoformat()}T23:59:59-12:00"),
]
#: A row id (1 … 2^53).
RowIdInt = Annotated[int, at.Ge(1), at.Le(MAX_ID)]
#: A version or similar counter (1 … 2^31−1).
VersionInt = Annotated[int, at.Ge(1), at.Le(MAX_INT32)]
