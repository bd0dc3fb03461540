"""How a list of people is shown in a chat reply."""

from __future__ import annotations

from bot.store import Member


def names(members: list[Member], limit: int = 20) -> str:
    """「张三、李四 等 25 人」: at most ``limit`` names, then the count."""
    shown = "、".join(m.name for m in members[:limit])
    return shown + (f" 等 {len(members)} 人" if len(members) > limit else "")
