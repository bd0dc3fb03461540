"""docs/architecture.md shows the import-linter contract: the copy must be the file itself."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_the_architecture_page_shows_the_current_layer_contract():
    page = (ROOT / "docs" / "architecture.md").read_text(encoding="utf-8")
    contract = (ROOT / ".importlinter").read_text(encoding="utf-8")
    shown = page.split("```ini\n", 1)[1].split("```", 1)[0]
    assert shown == contract, "copy .importlinter into the ini block of docs/architecture.md"
