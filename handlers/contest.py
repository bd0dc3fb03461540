"""抢答赛 / 参赛: a live party-history contest in the branch.

The secretary starts it; members join within 2 minutes; the ticking job then sends each
question to every participant at once (through the outbox). The first three correct
answers within 60 s score 10 / 8 / 6. A late or second answer is refused kindly.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from sqlalchemy.exc import IntegrityError
from sqlmodel import col, select

from bot.audit import actor_of, record
from bot.dialogs import DialogState
from bot.outbox.campaigns import create_campaign
from bot.router import MemberContext
from bot.store import Question
from bot.store.members import branch_members, ids_of
from bot.store.models import Contest, ContestAnswer, ContestPlayer, ContestState, Dialog, saved_id
from handlers import asking
from quizzes.answers import looks_like_answer
from quizzes.contest import ANSWER_WINDOW, DEFAULT_SIZE, JOIN_WINDOW, MAX_SIZE, PLACE_POINTS

DIALOG = "contest"


@dataclass(frozen=True)
class PlayerState(DialogState):
    """参赛: the member plays in this contest until it ends."""

    contest: int


def _open_contest(ctx: MemberContext) -> Contest | None:
    return ctx.db.exec(
        select(Contest)
        .where(
            col(Contest.branch_id) == ctx.member.branch_id,
            col(Contest.state).in_((ContestState.JOINING, ContestState.RUNNING)),
        )
        .order_by(col(Contest.id).desc())
    ).first()


def start(ctx: MemberContext) -> str:
    arg = ctx.args.strip()
    size = int(arg) if arg.isdigit() else DEFAULT_SIZE
    if (arg and not arg.isdigit()) or not 1 <= size <= MAX_SIZE:
        return f"用法：抢答赛 [题数]，题数 1-{MAX_SIZE}，默认 {DEFAULT_SIZE} 题。"
    if _open_contest(ctx):
        return "本支部已有一场抢答赛正在进行，请等它结束后再发起。"
    pool = [saved_id(q) for q in ctx.db.exec(select(col(Question.id)).where(col(Question.active) == True)).all()]
    if len(pool) < size:
        return "题库题目不足，无法发起抢答赛。"
    contest = Contest(
        branch_id=ctx.member.branch_id,
        created_by=ctx.member_id,
        question_ids=random.sample(pool, size),
        join_until=ctx.now + JOIN_WINDOW,
        created_at=ctx.now,
    )
    ctx.db.add(contest)
    ctx.db.flush()
    start_at = contest.join_until.astimezone(ctx.config.tz)
    members = branch_members(ctx.db, [ctx.member.branch_id])
    create_campaign(
        ctx.db,
        kind="contest",
        title="党史知识抢答赛",
        text=f"党史知识抢答赛（{size} 题）将于 {start_at:%H:%M} 开始！2 分钟内回复「参赛」报名。每题 60 秒，前三位答对得 10/8/6 分。",
        member_ids=ids_of(members),
        now=ctx.now,
        branch_id=ctx.member.branch_id,
        created_by=ctx.member_id,
    )
    record(ctx.db, ctx.now, actor_of(ctx.member), "抢答赛", f"#{contest.id} {size} 题")
    return f"已发起抢答赛 #{contest.id}（{size} 题），已通知全支部 {len(members)} 人，{start_at:%H:%M} 开始。您也可以回复「参赛」一起答题。"


def join(ctx: MemberContext) -> str:
    contest = _open_contest(ctx)
    if contest is None:
        return "现在没有正在报名的抢答赛。"
    if contest.state != ContestState.JOINING or ctx.now >= contest.join_until:
        return "抢答赛报名已截止，下次早点来哦。"
    if ctx.db.exec(
        select(ContestPlayer).where(
            col(ContestPlayer.contest_id) == contest.id, col(ContestPlayer.member_id) == ctx.member_id
        )
    ).first():
        return "您已报名，请等待开赛。"
    ctx.db.add(ContestPlayer(contest_id=saved_id(contest.id), member_id=ctx.member_id, joined_at=ctx.now))
    end = contest.join_until + ANSWER_WINDOW * (len(contest.question_ids) + 2)
    assert contest.id is not None
    ctx.start_dialog(DIALOG, PlayerState(contest.id), expires_at=end)
    start_at = contest.join_until.astimezone(ctx.config.tz)
    return f"报名成功！抢答赛 {start_at:%H:%M} 开始，题目会同时发给每位参赛者，收到后直接回复选项字母。"


def answer(ctx: MemberContext, dialog: Dialog) -> str | None:
    if not looks_like_answer(ctx.args):
        return None
    contest = ctx.db.get(Contest, PlayerState.load(dialog.data).contest)
    if contest is None or contest.state == ContestState.DONE:
        ctx.end_dialog()
        return None
    if contest.state == ContestState.JOINING:
        return "抢答赛还没开始，请等待第一题。"
    started = contest.question_started_at
    assert started is not None
    if ctx.now > started + ANSWER_WINDOW:
        return "本题 60 秒作答时间已过，请等待下一题。"
    question = ctx.db.get(Question, contest.question_ids[contest.index])
    assert question is not None
    order = [o["id"] for o in question.options]
    problem, _, correct = asking.grade(ctx, question, order)
    if problem:
        return problem
    already = ctx.db.exec(
        select(ContestAnswer).where(
            col(ContestAnswer.contest_id) == contest.id,
            col(ContestAnswer.index) == contest.index,
            col(ContestAnswer.member_id) == ctx.member_id,
        )
    ).first()
    if already:
        return "每题只能作答一次，请等待下一题。"
    if not correct:
        ctx.db.add(
            ContestAnswer(
                contest_id=saved_id(contest.id), index=contest.index, member_id=ctx.member_id, correct=False, at=ctx.now
            )
        )
        return "❌ 回答错误，本题不得分。本题结束后公布答案和排名。"
    for place in (1, 2, 3, None):
        try:
            with ctx.db.begin_nested():  # the unique (contest, question, place) decides who was first
                ctx.db.add(
                    ContestAnswer(
                        contest_id=saved_id(contest.id),
                        index=contest.index,
                        member_id=ctx.member_id,
                        correct=True,
                        place=place,
                        points=PLACE_POINTS.get(place or 0, 0),
                        at=ctx.now,
                    )
                )
            break
        except IntegrityError:
            continue
    if place is None:
        return "✅ 回答正确！不过前三名已经产生，本题不得分。"
    player = ctx.db.exec(
        select(ContestPlayer).where(
            col(ContestPlayer.contest_id) == contest.id, col(ContestPlayer.member_id) == ctx.member_id
        )
    ).one()
    player.score += PLACE_POINTS[place]
    ctx.db.add(player)
    return f"✅ 回答正确！您是第 {place} 位答对的，得 {PLACE_POINTS[place]} 分。"


def hint(ctx: MemberContext, dialog: Dialog) -> str:
    return "抢答赛进行中：收到题目后直接回复选项字母。"
