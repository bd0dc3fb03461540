"""帮助: what this sender may do, by role."""

from __future__ import annotations

from bot.router import GUEST, Context, can_bind, not_bound


def show_help(ctx: Context) -> str:
    lines = ["党支部学习助手可以："]
    for command in ctx.registry.visible_to(ctx.role):
        if command.word == "帮助" or (command.word == "绑定" and not can_bind(ctx)):
            continue
        lines.append(f"· {command.usage} — {command.summary}")
    if ctx.role == GUEST:
        lines.insert(0, not_bound(ctx))
    else:
        lines.append("答题时直接回复选项字母（如 A、AC）或「对」「错」。")
    return "\n".join(lines)
