"""BranchBot's runtime and its wiring.

The runtime is the lower floors: configuration, the store (every table, the quiz's
included), channels, the outbox, the router and the per-message engine. They hold no
feature rules: what a quiz, a festival or a meeting means lives in quizzes/, scheduler/
and handlers/. The wiring is the top: the CLI and the ASGI app (with the console and the
simulator beside it) import those packages and put everything together. Which module may
import which is written in .importlinter and checked by ``make lint``; see
docs/architecture.md.
"""

__version__ = "0.1.0"
