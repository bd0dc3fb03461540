"""Moving live contests along: start after the join window, close each question after
60 s with the standings and the next question, and send the results at the end.

Runs every few seconds in the serving process. Each step is a conditional update on the
contest's state, so two instances never both take it.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import update
from sqlmodel import Session, col, select

from bot.config import Config
from bot.outbox.campaigns import create_campaign
from bot.store import Question, Store
from bot.store.models import Contest, ContestPlayer, ContestState
from quizzes import render
from quizzes.contest import ANSWER_WINDOW, standings_text


def _advance(db: Session, contest: Contest, state: str, index: int, now: datetime) -> bool:
    """Claim one step: only the caller whose update matched the old state proceeds."""
    values = {"state": state, "index": index, "question_started_at": now}
    if state == ContestState.DONE:
        values["finished_at"] = now
    changed = db.exec(
        update(Contest)
        .where(col(Contest.id) == contest.id, col(Contest.state) == contest.state, col(Contest.index) == contest.index)
        .values(**values)
    ).rowcount
    return bool(changed)


def _question_text(db: Session, contest: Contest, index: int) -> str:
    question = db.get(Question, contest.question_ids[index])
    assert question is not None
    return render.question_text(
        question, [o["id"] for o in question.options], f"抢答赛第 {index + 1}/{len(contest.question_ids)} 题（60 秒）"
    )


def _answer_text(db: Session, contest: Contest, index: int) -> str:
    question = db.get(Question, contest.question_ids[index])
    assert question is not None
    key = render.answer_key(question, [o["id"] for o in question.options])
    return f"第 {index + 1} 题答案：{key}\n解析：{question.explanation}\n来源：{question.source}"


def tick(store: Store, config: Config, now: datetime) -> int:
    """Advance every contest that is due; returns how many steps were taken."""
    steps = 0
    with store.session() as db:
        due = db.exec(select(Contest).where(col(Contest.state).in_((ContestState.JOINING, ContestState.RUNNING)))).all()
        for contest in due:
            players = [
                p.member_id
                for p in db.exec(select(ContestPlayer).where(col(ContestPlayer.contest_id) == contest.id)).all()
            ]

            def push(text: str, title: str, players: list[int] = players, branch: int = contest.branch_id) -> None:
                create_campaign(
                    db, kind="contest", title=title, text=text, member_ids=players, now=now, branch_id=branch
                )

            if contest.state == ContestState.JOINING and now >= contest.join_until:
                if not players:
                    _advance(db, contest, ContestState.DONE, contest.index, now)
                    steps += 1
                    continue
                if _advance(db, contest, ContestState.RUNNING, 0, now):
                    push(_question_text(db, contest, 0), "")
                    steps += 1
            elif (
                contest.state == ContestState.RUNNING
                and contest.question_started_at
                and now >= contest.question_started_at + ANSWER_WINDOW
            ):
                index = contest.index  # read before the update, which also refreshes the object
                result = _answer_text(db, contest, index)
                if index + 1 >= len(contest.question_ids):
                    if _advance(db, contest, ContestState.DONE, index, now):
                        push(result + "\n\n" + standings_text(db, contest, "🏆 抢答赛结束！最终排名："), "抢答赛结果")
                        steps += 1
                elif _advance(db, contest, ContestState.RUNNING, index + 1, now):
                    standings = standings_text(db, contest, "当前排名：")
                    push(f"{result}\n\n{standings}\n\n{_question_text(db, contest, index + 1)}", "")
                    steps += 1
    return steps
