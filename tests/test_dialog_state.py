"""Dialog states read what the store holds, including rows written before they existed
as dataclasses (a deploy never voids a dialog in progress)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from handlers.broadcast import NoticeDraft
from handlers.meetings import STEPS, MeetingDraft
from handlers.practice import ChallengeState
from handlers.review import ReviewState

CST = timezone(timedelta(hours=8))


def test_rows_stored_with_string_keys_load_as_states() -> None:
    draft = NoticeDraft.load({"text": "学习", "branch_ids": [1], "target": "第一党支部", "when": ""})
    assert draft == NoticeDraft("学习", [1], "第一党支部", None)
    scheduled = NoticeDraft.load(
        {"text": "学习", "branch_ids": [1], "target": "x", "when": "2026-12-01T09:00:00+08:00"}
    )
    assert scheduled.when == datetime(2026, 12, 1, 9, 0, tzinfo=CST)
    assert MeetingDraft.load({"step": "type"}) == MeetingDraft()
    review = ReviewState.load(
        {"queue": [3, 4], "order": ["o2", "o1"], "asked_at": "2026-11-10T09:00:00+08:00", "number": 1, "total": 2}
    )
    assert review.queue == [3, 4] and review.asked_at.tzinfo is not None


def test_a_state_survives_the_round_trip_through_json() -> None:
    import json

    state = ChallengeState(7, ["o1", "o2"], datetime(2026, 11, 10, 9, tzinfo=CST), run=3, streak=2)
    assert ChallengeState.load(json.loads(json.dumps(state.dump()))) == state


def test_the_meeting_steps_are_declared_in_order() -> None:
    assert [s.name for s in STEPS] == ["type", "time", "place", "topic", "confirm"]
