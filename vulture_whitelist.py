"""Names vulture cannot see used: frameworks call or read them. `make lint` passes this file
to vulture beside the packages (see [tool.vulture] in pyproject.toml). Each entry says who
uses the name; delete an entry when its name goes."""

from vulture.whitelist_utils import Whitelist

_ = Whitelist()

# pydantic reads a model's configuration from this class attribute.
_.model_config
# prometheus_client calls collect() on a registered collector at scrape time (bot/metrics.py).
_.collect
# uvicorn imports the factory named in `serve --workers N` ("bot.app:app_from_environment").
_.app_from_environment
# SQLAlchemy TypeDecorator hooks (bot/store/models.py UTCDateTime).
_.impl
_.cache_ok
_.process_bind_param
_.process_result_value
# sqlite3's connection attribute, set so that we issue BEGIN ourselves (bot/store/db.py).
_.isolation_level
# logging reads a record's levelname when formatting (scheduler/runner.py demotes it).
_.levelname
# rich reads a table column's no_wrap; openpyxl reads cell and sheet styles (bot/exports.py).
_.no_wrap
_.font
_.fill
_.alignment
_.number_format
_.freeze_panes
_.ref
# Starlette's Request caches the body it has read in _body (bot/console/web.py read_form).
_._body
# Stored columns written by the code and read by SQL, templates or exports, not by Python.
_.refreshed_at  # AccessToken: when the token was last fetched (doctor, debugging)
_.lapses  # ReviewCard: times a question was answered wrong again
_.handled_by  # QuestionReport: shown on the console's questions page
_.joined_at  # ContestPlayer: when the member joined the contest
_.token_hash  # ConsoleLoginToken: primary key, looked up by db.get
# Accepted in old configuration files; no longer limits retries (README, outbox.retry_window).
_.max_attempts
# Documented in README as the importer's programmatic entry point.
_.parse_question_file
# Read by bench/serve_variant.py --limiter (benchmarks are not scanned).
_.webhooks
# pyexpat reads its parser's options and calls the handlers set on it (bot/channels/xmlwire.py).
_.ordered_attributes
_.buffer_text
_.StartElementHandler
_.EndElementHandler
_.CharacterDataHandler
_.StartDoctypeDeclHandler
_.EntityDeclHandler
# bot/store/hot.py: the chat hot path's data functions, landed before the handlers that call
# them (issue 14, in progress). Delete these lines once the handlers use them.
_.total_points
_.record_message
_.member_by_sender
_.save_dialog
_.set_subscribed
_.attempt_for_answer
_.advance_attempt
_.record_answer
_.save_review_card
