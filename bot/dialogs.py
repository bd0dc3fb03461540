"""A dialog's state: one small frozen dataclass per dialog, kept in the dialog row's JSON.

Handlers read and write named, typed fields instead of ``dialog.data["…"]`` string keys.
The stored keys are the field names, and datetimes are ISO text, so a row written before
a deploy is still read after it (a missing field takes its default).
"""

from __future__ import annotations

import types
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields
from datetime import datetime
from typing import Any, Self, Union, get_args, get_origin, get_type_hints


@dataclass(frozen=True)
class DialogState:
    """Subclass as a frozen dataclass; its fields are the dialog's state.

    >>> @dataclass(frozen=True)
    ... class Waiting(DialogState):
    ...     asked_at: datetime
    >>> Waiting.load({"asked_at": "2026-11-10T09:00:00+08:00"}).asked_at.hour
    9
    """

    def dump(self) -> dict[str, Any]:
        return {k: v.isoformat() if isinstance(v, datetime) else v for k, v in asdict(self).items()}

    @classmethod
    def load(cls, data: Mapping[str, Any]) -> Self:
        hints = get_type_hints(cls)
        values: dict[str, Any] = {}
        for f in fields(cls):
            if f.name not in data:
                continue
            value = data[f.name]
            if _is_datetime(hints[f.name]) and not isinstance(value, datetime):
                value = datetime.fromisoformat(value) if value else None
            values[f.name] = value
        return cls(**values)


def _is_datetime(hint: Any) -> bool:
    if hint is datetime:
        return True
    return get_origin(hint) in (Union, types.UnionType) and datetime in get_args(hint)
