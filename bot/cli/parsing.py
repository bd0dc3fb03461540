"""argparse in Chinese: errors, usage and help headings, and Chinese choices with English aliases."""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Callable
from typing import NoReturn, TypeAlias

_SUBCOMMAND_DESTS = {"command", "action"}


def _argument(name: str) -> str:
    return "子命令" if name in _SUBCOMMAND_DESTS else f"参数 {name}"


def translate(message: str) -> str:
    """argparse's English messages, in Chinese (unknown ones are kept as they are)."""
    m = re.fullmatch(r"the following arguments are required: (.+)", message)
    if m:
        names = [n.strip() for n in m.group(1).split(",")]
        return "缺少" + "、".join("子命令" if n in _SUBCOMMAND_DESTS else f"参数 {n}" for n in names)
    m = re.fullmatch(r"unrecognized arguments: (.+)", message)
    if m:
        return f"无法识别的参数：{m.group(1)}"
    m = re.fullmatch(r"argument (\S+?): (.+)", message, re.S)
    if m:
        who, what = _argument(m.group(1).split("/")[-1]), m.group(2)
        c = re.fullmatch(r"invalid choice: '?(.*?)'? \(choose from (.+)\)", what)
        if c:
            choices = "、".join(x.strip(" '") for x in c.group(2).split(","))
            return f"{who}：没有「{c.group(1)}」，可选：{choices}"
        c = re.fullmatch(r"invalid (\w+) value: '?(.*?)'?", what)
        if c:
            kind = {"int": "整数", "float": "数字"}.get(c.group(1), c.group(1))
            return f"{who}：「{c.group(2)}」不是{kind}"
        if what == "expected one argument":
            return f"{who} 后面需要一个值"
        return f"{who}：{what}"
    m = re.fullmatch(r"ambiguous option: (\S+) could match (.+)", message)
    if m:
        return f"选项 {m.group(1)} 不明确，可能是：{m.group(2)}"
    return message


class ChineseArgumentParser(argparse.ArgumentParser):
    def format_usage(self) -> str:
        return super().format_usage().replace("usage: ", "用法：", 1)

    def format_help(self) -> str:
        text = super().format_help().replace("usage: ", "用法：", 1)
        return (
            text.replace("positional arguments:", "参数：")
            .replace("options:", "选项：")
            .replace("show this help message and exit", "显示帮助并退出")
        )

    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        self.exit(2, f"{self.prog}：{translate(message)}\n运行 {self.prog} --help 查看用法。\n")


def aliases(name: str, mapping: dict[str, str], shown: str) -> Callable[[str], str]:
    """An argparse type taking Chinese words (and English aliases) for a fixed set of values."""

    def convert(value: str) -> str:
        try:
            return mapping[value.strip().lower() if value.isascii() else value.strip()]
        except KeyError:
            raise argparse.ArgumentTypeError(f"没有「{value}」，可选：{shown}") from None

    convert.__name__ = name
    return convert


SCOPES = {
    "本月": "month",
    "月": "month",
    "month": "month",
    "总": "total",
    "累计": "total",
    "total": "total",
    "支部": "branches",
    "各支部": "branches",
    "branches": "branches",
}
EXPORT_KINDS = {
    "成绩": "scores",
    "scores": "scores",
    "参与率": "participation",
    "participation": "participation",
    "考勤": "attendance",
    "attendance": "attendance",
    "推送": "deliveries",
    "deliveries": "deliveries",
}


def positive_int(value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"「{value}」不是整数") from None
    if number < 1:
        raise argparse.ArgumentTypeError(f"应为正整数，而不是 {value}")
    return number


def year(value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"「{value}」不是年份，如 2027") from None
    if not 1901 <= number <= 9998:
        raise argparse.ArgumentTypeError("年份应在 1901 至 9998 之间")
    return number


# The ``branchbot`` subcommands, which each command group's module registers its own into.
Commands: TypeAlias = "argparse._SubParsersAction[ChineseArgumentParser]"
