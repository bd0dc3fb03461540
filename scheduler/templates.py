"""Push texts: bundled templates, each replaceable by a file of the same name in
``scheduler.templates_dir`` (so a secretary can edit wording without touching code)."""

from __future__ import annotations

import tomllib
from pathlib import Path
from string import Template

from bot.config import Config

BUNDLED = Path(__file__).parent / "templates"


def _read(config: Config, filename: str) -> str:
    if config.scheduler.templates_dir:
        custom = Path(config.scheduler.templates_dir) / filename
        if custom.exists():
            return custom.read_text(encoding="utf-8")
    return (BUNDLED / filename).read_text(encoding="utf-8")


def render(config: Config, template: str, **values: object) -> str:
    return Template(_read(config, f"{template}.txt")).safe_substitute({k: str(v) for k, v in values.items()}).strip()


def holiday_extra(config: Config, festivals: tuple[str, ...]) -> str:
    extras = tomllib.loads(_read(config, "holiday_extras.toml"))
    return "".join(extras.get(name, "") for name in festivals)
