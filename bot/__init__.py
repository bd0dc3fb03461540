"""BranchBot runtime: configuration, the ASGI webhook app, channels, router, store and CLI.

Nothing in this package knows what a quiz or a festival is; that lives in handlers/,
quizzes/ and scheduler/.
"""

__version__ = "0.1.0"
