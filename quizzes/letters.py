"""The words a member answers with: option letters and the true/false words.

Kept apart from the bank (which needs the ORM) so the chat parser, the importers and the
bank share one list without the parser importing the store.
"""

from __future__ import annotations

LETTERS = "ABCDEF"
TRUE_WORDS = {"对", "正确", "√", "✓", "✔", "T", "TRUE", "是", "Y", "YES"}
FALSE_WORDS = {"错", "错误", "×", "✗", "✘", "X", "F", "FALSE", "否", "N", "NO"}
