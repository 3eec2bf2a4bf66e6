"""Shared building blocks for models: time, labelled enums, column types."""

from __future__ import annotations

import enum
from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy.types import TypeDecorator

LOCAL_TZ = ZoneInfo("Asia/Shanghai")


def utcnow() -> datetime:
    return datetime.now(UTC)


def local_now() -> datetime:
    """The time now in Asia/Shanghai."""
    return datetime.now(LOCAL_TZ)


def local_today() -> date:
    """Today's date in Asia/Shanghai, the calendar the users live by."""
    return datetime.now(LOCAL_TZ).date()


class UTCDateTime(TypeDecorator):
    """Timezone-aware UTC datetimes, stored naive-UTC so SQLite and PostgreSQL agree."""

    impl = sa.DateTime
    cache_ok = True

    def process_bind_param(self, value, dialect):
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTCDateTime column")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value, dialect):
        return None if value is None else value.replace(tzinfo=UTC)


class LabelledEnum(enum.Enum):
    """An enum whose members carry the Chinese word the UI shows, and the badge it shows in.

    Members are declared as ``NAME = "label"`` or ``NAME = "label", "badge"``; the database
    stores NAME. The badge is the style of the tag pages show the member in: "ok" (green),
    "warn" (amber), "stale" (red), or "" (plain text).
    """

    # Plain attributes, not properties: pages read them for every row.
    label: str
    badge: str

    def __init__(self, label: str, badge: str = "") -> None:
        self.label = label
        self.badge = badge

    @classmethod
    def choices(cls) -> list[tuple[str, str]]:
        return [(m.name, m.label) for m in cls]

    @classmethod
    def from_name(cls, name: str | None):
        try:
            return cls[name] if name else None
        except KeyError:
            return None

    def __str__(self) -> str:
        return self.label


def enum_column(enum_cls: type[enum.Enum], name: str) -> sa.Enum:
    """A non-native enum with a named CHECK constraint: never a free-text state column."""
    return sa.Enum(
        enum_cls,
        name=name,
        native_enum=False,
        create_constraint=True,
        length=max(len(m.name) for m in enum_cls),
        validate_strings=True,
    )


Money = sa.Numeric(14, 2)  # 万元
Area = sa.Numeric(12, 2)  # 亩


class ServiceError(Exception):
    """A business rule refused the change; nothing of it is kept.

    `errors` maps form field names to messages in Chinese, shown at the fields.
    """

    def __init__(self, message: str = "", errors: dict[str, str] | None = None):
        super().__init__(message or "；".join((errors or {}).values()))
        self.message = message
        self.errors = errors or {}


class ConflictError(ServiceError):
    """Someone else saved the record since this user loaded it."""


def content_disposition(filename: str, fallback: str) -> str:
    """`attachment` with the real (Chinese) name as RFC 5987 `filename*`, and an ASCII
    `fallback` for clients that read only `filename`."""
    from urllib.parse import quote

    safe = "".join(c for c in fallback if c.isascii() and c.isprintable() and c not in '"\\')
    return f"attachment; filename=\"{safe}\"; filename*=UTF-8''{quote(filename, safe='')}"


def parse_int(value: str | None, max_digits: int = 9) -> int | None:
    """A non-negative integer typed in a URL (ids, page numbers), or None. Only ASCII digits:
    str.isdigit() also accepts "²", which int() refuses."""
    if value and value.isascii() and value.isdigit() and len(value) <= max_digits:
        return int(value)
    return None
