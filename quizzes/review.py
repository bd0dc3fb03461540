"""The wrong-answer book's schedule: FSRS (py-fsrs 6.x) with day-level steps, so a
question answered wrongly comes back the next day, then at growing intervals.

Wrong → Again, right → Good. A question answered right while its stability is above
30 days leaves the book.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from fsrs import Card, Rating, Scheduler

GRADUATE_STABILITY_DAYS = 30.0
SCHEDULER = Scheduler(
    learning_steps=(timedelta(days=1),),
    relearning_steps=(timedelta(days=1),),
    maximum_interval=180,
    enable_fuzzing=False,
)


@dataclass(frozen=True)
class Reviewed:
    card: str  # JSON
    due: datetime
    stability: float
    graduated: bool


def review(card_json: str | None, card_id: int, correct: bool, when: datetime) -> Reviewed:
    """The card after one answer (a new card is created by the first wrong answer)."""
    utc = when.astimezone(UTC)
    card = Card.from_json(card_json) if card_json else Card(card_id=card_id)
    graduated = correct and card_json is not None and (card.stability or 0.0) > GRADUATE_STABILITY_DAYS
    card, _ = SCHEDULER.review_card(card, Rating.Good if correct else Rating.Again, review_datetime=utc)
    return Reviewed(card.to_json(), card.due, float(card.stability or 0.0), graduated)
