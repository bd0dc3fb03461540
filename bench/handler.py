#!/usr/bin/env python3
"""CPU per message inside ``Engine.handle`` for the hot replies, beside the raw-sqlite3 floor.

Run by hand (never in CI), from the repository root:

    .venv/bin/python bench/handler.py                    # 50 bound members, 1,000 calls a reply, ~1-2 min
    .venv/bin/python bench/handler.py --city             # 50,000 members in 300 branches (slower set-up)
    .venv/bin/python bench/handler.py --calls 300 --only 积分 --show-sql

The replies: 积分, 排行榜, an answer in the monthly quiz, an answer in 练习, 绑定. Each is
timed through the real chat path (``Engine.handle``: message key, member, dialog, router,
handler, banner, one transaction) with ``time.process_time`` (CPU) and
``time.perf_counter`` (wall), after a warm-up, over ``--calls`` calls each.

The floor: the same conversation on a snapshot of the same database, taken just before
the reply's phase, answered with the standard library's ``sqlite3`` in one transaction
(BEGIN IMMEDIATE ... COMMIT, the store's pragmas): the reads and writes the reply needs
(message key insert, member by sender, dialog, unread notices for the banner, the reply's
data, the answer, review card and points writes where the reply makes them) and the
reply's text. It reuses only the pure domain rules (answer parsing, grading, the FSRS
review schedule, option order), so the ratio is what the data layer and the framework
cost on top of the work itself. Steps that are set-up rather than the measured reply
(``答题`` / ``练习`` to open a question) go through ``Engine.handle`` on the snapshot too,
untimed, so both sides walk the same conversation.

Statements per message are counted in a separate, untimed pass (the counters cost CPU):
SQL statements the engine sends through SQLAlchemy (BEGIN/COMMIT not counted), and every
statement SQLite runs, BEGIN and COMMIT included (``sqlite3`` trace callback).

Set-up reuses the CLI (``branchbot init`` loads the bundled bank, ``branchbot members
import`` the roster) and ``quizzes.points.award`` for earlier months' points.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import random
import re
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
import uuid
from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
VENV_BIN = Path(sys.executable).parent

from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402
from sqlalchemy import event  # noqa: E402

from bot.config import Config, load_config  # noqa: E402
from bot.engine import Engine  # noqa: E402
from bot.messages import Inbound  # noqa: E402
from bot.store import Store, create_store  # noqa: E402
from handlers import build_registry  # noqa: E402
from quizzes.answers import is_correct, parse  # noqa: E402
from quizzes.bank import LETTERS  # noqa: E402
from quizzes.paper import option_order  # noqa: E402
from quizzes.points import award  # noqa: E402
from quizzes.review import review  # noqa: E402

SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗"
GIVEN = "伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚桂英华玉兰萍红建国志"
START = datetime(2026, 3, 10, 2, 0, tzinfo=UTC)  # a weekday morning in Shanghai
REPLIES = ("积分", "排行榜", "quiz answer", "practice answer", "绑定")
ANSWERING = 100  # members who answer in the quiz and practice conversations
QUESTION_HEAD = re.compile(r"（(单选|多选|判断)）\n")
OPTION_LINE = re.compile(r"^([A-F])\. ", re.M)


# ---------------------------------------------------------------- set-up


@dataclass(frozen=True)
class Person:
    name: str
    phone: str
    openid: str | None
    branch: int


def person_name(i: int) -> str:
    """A unique Chinese name for index i: a surname, then i in base len(GIVEN)."""
    digits = []
    n = i
    while True:
        n, d = divmod(n, len(GIVEN))
        digits.append(GIVEN[d])
        if n == 0:
            break
    return SURNAMES[i % len(SURNAMES)] + "".join(reversed(digits)).rjust(2, GIVEN[0])


def make_roster(bound: int, binders: int, branches: int) -> tuple[list[Person], list[Person]]:
    people, waiting = [], []
    for i in range(bound + binders):
        person = Person(
            person_name(i), f"139{i:08d}", f"oHandler{i:07d}{'x' * 12}" if i < bound else None, 1 + i % branches
        )
        (people if i < bound else waiting).append(person)
    return people, waiting


class Clock:
    """The engine's clock: one second later on every call, a month later when asked."""

    def __init__(self, start: datetime) -> None:
        self.now = start

    def __call__(self) -> datetime:
        self.now += timedelta(seconds=1)
        return self.now

    def next_month(self) -> None:
        year, month = (self.now.year, self.now.month + 1) if self.now.month < 12 else (self.now.year + 1, 1)
        self.now = datetime(year, month, 5, 2, 0, tzinfo=UTC)


def run_cli(argv: list[str], cwd: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("BRANCHBOT")}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH", "")]))  # this checkout's code
    done = subprocess.run(
        [str(VENV_BIN / "branchbot"), *argv], cwd=cwd, env=env, capture_output=True, text=True, timeout=1800
    )
    if done.returncode != 0:
        raise SystemExit(f"branchbot {argv[0]} failed:\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}")


def set_up(tmp: Path, people: list[Person], waiting: list[Person], branches: int) -> tuple[Path, Config]:
    db = tmp / "handler.db"
    cfg = tmp / "config.toml"
    cfg.write_text(
        textwrap.dedent(f"""\
        [database]
        url = "sqlite:///{db}"
        [wechat]
        token = "benchtoken"
        mode = "plain"
        """),
        encoding="utf-8",
    )
    run_cli(["init", "--config", str(cfg)], tmp)
    roster = tmp / "roster.csv"
    with open(roster, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["姓名", "手机号", "支部", "入党日期", "角色", "微信OpenID", "企业微信账号"])
        for i, p in enumerate([*people, *waiting]):
            w.writerow(
                [
                    p.name,
                    p.phone,
                    f"基准第{p.branch}党支部",
                    f"{2000 + i % 24}-0{1 + i % 9}-01",
                    "党员",
                    p.openid or "",
                    "",
                ]
            )
    run_cli(["members", "import", str(roster), "--config", str(cfg)], tmp)
    config = load_config(cfg)
    store = create_store(config.database.url)
    rng = random.Random(14)
    with store.session() as session, sqlite3.connect(db) as conn:
        ids = dict(conn.execute("SELECT openid, id FROM member WHERE openid IS NOT NULL"))
        branch_of = dict(conn.execute("SELECT id, branch_id FROM member"))
        for p in people:  # points from earlier months, so the boards have something to rank
            member_id = ids[p.openid]
            for months_back in (1, 2):
                at = START - timedelta(days=30 * months_back)
                amount = rng.choice((0, 30, 50, 60, 70, 80, 90, 100))
                if amount:
                    award(session, member_id, branch_of[member_id], amount, f"monthly:{at:%Y-%m}", f"{at:%Y-%m}", at)
    # Half the members (at most 200) have finished this month's quiz, through the chat
    # path itself, so 积分 and 排行榜 (measured first) rank a real month board.
    clock = Clock(START - timedelta(hours=2))
    engine = Engine(store, config, build_registry(), clock=clock)
    for p in people[: min(len(people) // 2, 200)]:
        assert p.openid
        reply = engine.handle(inbound(p.openid, "答题", clock.now))
        while asks_question(reply):
            reply = engine.handle(inbound(p.openid, answer_to(reply, rng), clock.now))
    store.dispose()
    return db, config


def snapshot(db: Path, to: Path) -> None:
    with sqlite3.connect(db) as src, sqlite3.connect(to) as dst:
        src.backup(dst)


# ---------------------------------------------------------------- conversations (shared by engine and floor)

# A conversation yields (sender, text, timed) and is sent each reply back. Untimed steps
# set the timed one up (open the quiz, start practice); both sides run them the same way.
Step = tuple[str, str, bool]
Conversation = Generator[Step, str, None]


def answer_to(reply: str, rng: random.Random) -> str:
    """A well-formed answer to the question a reply shows (right or wrong at random)."""
    kinds = QUESTION_HEAD.findall(reply)
    if not kinds:
        return "A"
    kind = kinds[-1]
    if kind == "判断":
        return rng.choice(("对", "错"))
    letters = OPTION_LINE.findall(reply.split(f"（{kind}）")[-1]) or list("ABCD")
    if kind == "多选":
        return "".join(sorted(rng.sample(letters, min(len(letters), rng.choice((2, 3))))))
    return rng.choice(letters)


def asks_question(reply: str) -> bool:
    return bool(QUESTION_HEAD.search(reply))


def same_words(people: list[Person], words: str) -> Conversation:
    while True:
        for p in people:
            assert p.openid
            yield p.openid, words, True


def monthly_quiz(people: list[Person], clock: Clock, rng: random.Random) -> Conversation:
    """Every member opens the month's quiz (untimed), then answers question after question,
    members interleaved, to the summary; then the month turns and it starts again."""
    idle_months = 0
    while True:
        shown: dict[str, str] = {}
        for p in people:
            assert p.openid
            reply = yield p.openid, "答题", False
            if asks_question(reply):
                shown[p.openid] = reply
        if not shown:  # all of them have finished this month's quiz already
            idle_months += 1
            if idle_months > 1:
                raise SystemExit("答题 showed no question: is the bank empty?")
            clock.next_month()
            continue
        idle_months = 0
        while shown:
            for openid in list(shown):
                reply = yield openid, answer_to(shown[openid], rng), True
                if asks_question(reply):
                    shown[openid] = reply
                else:
                    del shown[openid]
        clock.next_month()


def practice(people: list[Person], rng: random.Random) -> Conversation:
    shown: dict[str, str] = {}
    for p in people:
        assert p.openid
        shown[p.openid] = yield p.openid, "练习", False
    while True:
        for openid in shown:
            reply = yield openid, answer_to(shown[openid], rng), True
            if not asks_question(reply):  # not expected: the dialog ended
                reply = yield openid, "练习", False
            shown[openid] = reply


def binding(waiting: list[Person]) -> Conversation:
    for i, p in enumerate(waiting):
        yield f"oBinder{i:07d}{'y' * 13}", f"绑定 {p.name} {p.phone[-4:]}", True
    raise SystemExit("ran out of unbound roster entries: raise --calls or lower the warm-up")


# ---------------------------------------------------------------- the floor: raw sqlite3, one transaction


def utc_text(at: datetime) -> str:
    """How SQLAlchemy stores a datetime on SQLite (naive UTC)."""
    return at.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")


class Floor:
    """The least a reply can cost here: named statements on one sqlite3 connection."""

    def __init__(self, path: Path, config: Config) -> None:
        self.conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        for pragma in ("journal_mode=WAL", "synchronous=NORMAL", "busy_timeout=5000", "foreign_keys=ON"):
            self.conn.execute(f"PRAGMA {pragma}")
        self.config = config
        self.rng = random.Random(5)

    def close(self) -> None:
        self.conn.close()

    def handle(self, kind: str, sender: str, text: str, key: str, now: datetime) -> str:
        c = self.conn
        c.execute("BEGIN IMMEDIATE")
        try:
            member = c.execute(
                "SELECT id, name, branch_id, role FROM member WHERE openid = ? AND status = '在册'", (sender,)
            ).fetchone()
            dialog = c.execute(
                "SELECT kind, data, expires_at FROM dialog WHERE sender = ?", (f"wechat:{sender}",)
            ).fetchone()
            reply = getattr(self, kind)(member, dialog, sender, text, now)
            if member is not None:
                unread = c.execute(
                    "SELECT count(*) FROM delivery WHERE member_id = ? AND status = 'inbox' AND read_at IS NULL",
                    (member[0],),
                ).fetchone()[0]
                if unread:
                    reply = f"您有 {unread} 条未读通知，发送「通知」查看。\n\n{reply}"
            c.execute(
                "INSERT INTO processedmessage (key, channel, reply, created_at) VALUES (?, 'wechat', ?, ?)",
                (key, reply, utc_text(now)),
            )
            c.execute("COMMIT")
        except BaseException:
            c.execute("ROLLBACK")
            raise
        return reply

    # -- reads shared by replies

    def month_place(self, member_id: int, branch_id: int, month: str) -> tuple[int, int] | None:
        row = self.conn.execute(
            "SELECT a.score, 1 + (SELECT count(*) FROM attempt b WHERE b.month = a.month AND b.branch_id = a.branch_id"
            " AND b.finished_at IS NOT NULL AND (b.score > a.score OR (b.score = a.score AND"
            " (b.finished_at < a.finished_at OR (b.finished_at = a.finished_at AND b.member_id < a.member_id)))))"
            " FROM attempt a WHERE a.member_id = ? AND a.month = ? AND a.branch_id = ? AND a.finished_at IS NOT NULL",
            (member_id, month, branch_id),
        ).fetchone()
        return None if row is None else (row[1], row[0])

    def finished_count(self, branch_id: int, month: str) -> int:
        return self.conn.execute(
            "SELECT coalesce(sum(finished), 0) FROM branchmonth WHERE month = ? AND branch_id = ?", (month, branch_id)
        ).fetchone()[0]

    def award(self, member_id: int, branch_id: int, amount: int, reason: str, month: str, now: datetime) -> None:
        c, at = self.conn, utc_text(now)
        c.execute(
            "INSERT INTO pointsentry (member_id, branch_id, amount, kind, reason, month, created_at)"
            " VALUES (?, ?, ?, 'earn', ?, ?, ?)",
            (member_id, branch_id, amount, reason, month, at),
        )
        c.execute(
            "INSERT INTO membertotal (member_id, points, reached_at) VALUES (?, ?, ?) ON CONFLICT (member_id) DO UPDATE"
            " SET points = points + excluded.points, reached_at = max(reached_at, excluded.reached_at)",
            (member_id, amount, at),
        )
        c.execute(
            "INSERT INTO branchmembertotal (branch_id, member_id, points, reached_at) VALUES (?, ?, ?, ?)"
            " ON CONFLICT (branch_id, member_id) DO UPDATE"
            " SET points = points + excluded.points, reached_at = max(reached_at, excluded.reached_at)",
            (branch_id, member_id, amount, at),
        )

    def record_answer(
        self,
        member_id: int,
        question: tuple,
        chosen: list[str],
        correct: bool,
        mode: str,
        attempt_id: Any,
        now: datetime,
    ) -> None:
        c, qid = self.conn, question[0]
        c.execute(
            "INSERT INTO answer (attempt_id, mode, member_id, question_id, chosen, is_correct, seconds_taken,"
            " answered_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (attempt_id, mode, member_id, qid, json.dumps(chosen), correct, 5.0, utc_text(now)),
        )
        card = c.execute(
            "SELECT id, card, lapses, graduated_at FROM reviewcard WHERE member_id = ? AND question_id = ?",
            (member_id, qid),
        ).fetchone()
        if card is None and correct:
            return
        if card is not None and card[3] is not None and correct:
            return
        done = review(card[1] if card and card[3] is None else None, card_id=qid, correct=correct, when=now)
        lapses = (card[2] if card else 0) + (0 if correct else 1)
        graduated = utc_text(now) if done.graduated else None
        if card is None:
            c.execute(
                "INSERT INTO reviewcard (member_id, question_id, card, due, stability, lapses, created_at, graduated_at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (member_id, qid, done.card, utc_text(done.due), done.stability, lapses, utc_text(now), graduated),
            )
        else:
            c.execute(
                "UPDATE reviewcard SET card = ?, due = ?, stability = ?, lapses = ?, graduated_at = ? WHERE id = ?",
                (done.card, utc_text(done.due), done.stability, lapses, graduated, card[0]),
            )

    # -- formatting (the same texts the handlers write)

    @staticmethod
    def render(question: tuple, order: list[str], header: str) -> str:
        _, kind, stem, options, *_ = question
        texts = {o["id"]: o["text"] for o in json.loads(options)}
        lines = [f"{header}（{kind}）", stem]
        if kind == "判断":
            lines.append("请回复「对」或「错」。")
        else:
            lines += [f"{LETTERS[i]}. {texts[oid]}" for i, oid in enumerate(order)]
            lines.append("请回复一个字母，如 A。" if kind == "单选" else "请回复全部正确选项的字母，如 AC。")
        return "\n".join(lines)

    @staticmethod
    def grade(text: str, question: tuple, order: list[str]) -> tuple[str, list[str], bool]:
        parsed = parse(text, question[1], len(order))
        if parsed.problem:
            return parsed.problem, [], False
        chosen = [order[LETTERS.index(letter)] for letter in parsed.letters]
        return "", chosen, is_correct(chosen, json.loads(question[4]))

    @staticmethod
    def feedback(question: tuple, order: list[str], correct: bool) -> str:
        _, kind, _, options, answer, explanation, source = question
        texts = {o["id"]: o["text"] for o in json.loads(options)}
        answer = json.loads(answer)
        if kind == "判断":
            key = texts[answer[0]]
        else:
            key = "".join(LETTERS[order.index(oid)] for oid in sorted(answer, key=order.index))
            key += f"（{texts[answer[0]]}）" if kind == "单选" else ""
        head = "✅ 回答正确！" if correct else f"❌ 回答错误。正确答案：{key}"
        if correct and kind != "判断":
            head += f"答案：{key}"
        return f"{head}\n解析：{explanation}\n来源：{source}"

    # -- the replies

    def points(self, member: tuple, dialog: Any, sender: str, text: str, now: datetime) -> str:
        member_id, name, branch_id, _ = member
        month = f"{now.astimezone(self.config.tz):%Y-%m}"
        total, this_month = self.conn.execute(
            "SELECT (SELECT points FROM membertotal WHERE member_id = :m),"
            " (SELECT coalesce(sum(amount), 0) FROM pointsentry WHERE member_id = :m AND month = :month)",
            {"m": member_id, "month": month},
        ).fetchone()
        place = self.month_place(member_id, branch_id, month)
        ranked, mine, ahead = self.conn.execute(
            "SELECT (SELECT count(*) FROM branchmembertotal WHERE branch_id = :b AND points > 0), t.points,"
            " (SELECT count(*) FROM branchmembertotal o WHERE o.branch_id = :b AND (o.points > t.points OR"
            " (o.points = t.points AND (o.reached_at < t.reached_at OR (o.reached_at = t.reached_at AND"
            " o.member_id < t.member_id))))) FROM branchmembertotal t WHERE t.branch_id = :b AND t.member_id = :m",
            {"b": branch_id, "m": member_id},
        ).fetchone() or (0, 0, 0)
        lines = [f"{name}同志的积分：", f"本月积分：{this_month} 分"]
        lines.append(f"本月测试：已完成，支部第 {place[0]} 名" if place else "本月测试：尚未完成，发送「答题」参加")
        lines.append(
            f"累计积分：{total or 0} 分" + (f"，支部第 {ahead + 1} 名（共 {ranked} 人有积分）" if mine > 0 else "")
        )
        return "\n".join(lines)

    def board(self, member: tuple, dialog: Any, sender: str, text: str, now: datetime) -> str:
        member_id, _, branch_id, _ = member
        local = now.astimezone(self.config.tz)
        month = f"{local:%Y-%m}"
        (branch,) = self.conn.execute("SELECT name FROM branch WHERE id = ?", (branch_id,)).fetchone()
        rows = self.conn.execute(
            "SELECT m.name, a.score FROM attempt a JOIN member m ON m.id = a.member_id WHERE a.month = ? AND"
            " a.branch_id = ? AND a.finished_at IS NOT NULL ORDER BY a.score + 0 DESC, a.finished_at, a.member_id"
            " LIMIT 10",
            (month, branch_id),
        ).fetchall()
        title = f"📊 {local.year}年{local.month}月测试排行榜（{branch}）"
        if not rows:
            return f"{title}\n本月还没有人完成测试，发送「答题」争当第一名！"
        count = self.finished_count(branch_id, month)
        place = self.month_place(member_id, branch_id, month)
        lines = [title] + [f"{i}. {name} {score} 分" for i, (name, score) in enumerate(rows, start=1)]
        lines.append(
            f"您排第 {place[0]} 名，{place[1]} 分（共 {count} 人）。"
            if place
            else "您暂未上榜，发送「答题」参加本月测试。"
        )
        return "\n".join(lines)

    def quiz(self, member: tuple, dialog: Any, sender: str, text: str, now: datetime) -> str:
        c = self.conn
        member_id, _, branch_id, _ = member
        assert dialog is not None and dialog[0] == "quiz", dialog
        attempt_id = json.loads(dialog[1])["attempt_id"]
        row = c.execute(
            "SELECT a.month, a.option_orders, a.position, a.correct, a.score, p.question_ids"
            " FROM attempt a JOIN paper p ON p.id = a.paper_id WHERE a.id = ? AND a.finished_at IS NULL",
            (attempt_id,),
        ).fetchone()
        month, orders, position, correct_count, score, qids = row
        qids, orders = json.loads(qids), json.loads(orders)
        wanted = qids[position : position + 2]
        found = {
            q[0]: q
            for q in c.execute(
                "SELECT id, kind, stem, options, answer, explanation, source FROM question WHERE id IN"
                f" ({', '.join('?' * len(wanted))})",
                wanted,
            )
        }
        question = found[qids[position]]
        order = orders[str(question[0])]
        problem, chosen, correct = self.grade(text, question, order)
        if problem:
            return problem
        self.record_answer(member_id, question, chosen, correct, "monthly", attempt_id, now)
        points = self.config.quiz.points_per_correct
        if correct:
            correct_count, score = correct_count + 1, score + points
            self.award(member_id, branch_id, points, f"monthly:{month}", month, now)
        position += 1
        said = self.feedback(question, order, correct)
        if position >= len(qids):
            c.execute(
                "UPDATE attempt SET position = ?, correct = ?, score = ?, finished_at = ? WHERE id = ?",
                (position, correct_count, score, utc_text(now), attempt_id),
            )
            c.execute(
                "INSERT INTO branchmonth (month, branch_id, finished, score_sum) VALUES (?, ?, 1, ?)"
                " ON CONFLICT (month, branch_id) DO UPDATE SET finished = finished + 1,"
                " score_sum = score_sum + excluded.score_sum",
                (month, branch_id, score),
            )
            c.execute("DELETE FROM dialog WHERE sender = ?", (f"wechat:{sender}",))
            place = self.month_place(member_id, branch_id, month)
            assert place is not None
            finished = self.finished_count(branch_id, month)
            return (
                f"{said}\n\n🎉 本月测试完成！答对 {correct_count}/{len(qids)} 题，得 {score} 分。\n"
                f"目前在本支部排名第 {place[0]} 位（已完成 {finished} 人）。\n发送「排行榜」查看榜单，发送「积分」查看积分。"
            )
        c.execute(
            "UPDATE attempt SET position = ?, correct = ?, score = ?, asked_at = ? WHERE id = ?",
            (position, correct_count, score, utc_text(now), attempt_id),
        )
        following = found[qids[position]]
        header = f"第 {position + 1}/{len(qids)} 题"
        return f"{said}\n\n{self.render(following, orders[str(following[0])], header)}"

    def practice(self, member: tuple, dialog: Any, sender: str, text: str, now: datetime) -> str:
        c = self.conn
        member_id, _, branch_id, _ = member
        assert dialog is not None and dialog[0] == "practice", dialog
        data = json.loads(dialog[1])
        question = c.execute(
            "SELECT id, kind, stem, options, answer, explanation, source FROM question WHERE id = ?", (data["qid"],)
        ).fetchone()
        problem, chosen, correct = self.grade(text, question, data["order"])
        if problem:
            return problem
        self.record_answer(member_id, question, chosen, correct, "practice", None, now)
        said = self.feedback(question, data["order"], correct)
        if correct:
            cap, reason = self.config.practice.daily_cap, f"practice:{now.astimezone(self.config.tz):%Y-%m-%d}"
            (earned,) = c.execute(
                "SELECT coalesce(sum(amount), 0) FROM pointsentry WHERE member_id = ? AND reason = ?",
                (member_id, reason),
            ).fetchone()
            if earned >= cap:
                said += f"\n（今日练习积分已满 {cap} 分）"
            else:
                self.award(member_id, branch_id, 1, reason, f"{now.astimezone(self.config.tz):%Y-%m}", now)
                said += f"\n（积分 +1，今日 {earned + 1}/{cap}）"
        # The next question: a random active one not answered in the last week, in one query.
        following = c.execute(
            "SELECT id, kind, stem, options, answer, explanation, source FROM question WHERE active AND id NOT IN"
            " (SELECT question_id FROM answer WHERE member_id = ? AND answered_at >= ?) ORDER BY random() LIMIT 1",
            (member_id, utc_text(now - timedelta(days=7))),
        ).fetchone()
        if following is None:
            following = c.execute(
                "SELECT id, kind, stem, options, answer, explanation, source FROM question WHERE active"
                " ORDER BY random() LIMIT 1"
            ).fetchone()
        ids = [o["id"] for o in json.loads(following[3])]
        order = option_order(ids, f"{sender}:{now.timestamp()}:{following[0]}", shuffle=following[1] != "判断")
        data = {"qid": following[0], "order": order, "asked_at": now.isoformat(), "category": data.get("category", "")}
        c.execute(
            "UPDATE dialog SET data = ?, expires_at = ?, updated_at = ? WHERE sender = ?",
            (json.dumps(data), utc_text(now + timedelta(hours=12)), utc_text(now), f"wechat:{sender}"),
        )
        return f"{said}\n\n{self.render(following, order, '练习')}"

    def bind(self, member: Any, dialog: Any, sender: str, text: str, now: datetime) -> str:
        c = self.conn
        assert member is None, "a binder is a guest"
        _, name, digits = text.split()
        (failures,) = c.execute(
            "SELECT count(*) FROM bindattempt WHERE openid = ? AND ok = 0 AND at > ? AND member_id IS NULL",
            (sender, utc_text(now - timedelta(hours=1))),
        ).fetchone()
        if failures >= 10:
            return "绑定尝试次数过多，请 1 小时后再试，或联系支部书记协助绑定。"
        candidates = c.execute(
            "SELECT m.id, m.phone, m.openid, m.bind_locked_until, b.name FROM member m JOIN branch b"
            " ON b.id = m.branch_id WHERE m.status = '在册' AND m.name = ? ORDER BY m.id",
            (name,),
        ).fetchall()
        at = utc_text(now)
        matching = [m for m in candidates if m[1].endswith(digits) and (m[3] is None or m[3] <= at)]
        if len(matching) != 1 or (matching[0][2] and matching[0][2] != sender):
            raise SystemExit(f"the floor's 绑定 expects one free match for {text!r}")
        member_id, _, _, _, branch = matching[0]
        c.execute("UPDATE member SET openid = ?, bound_at = ?, subscribed = 1 WHERE id = ?", (sender, at, member_id))
        c.execute("INSERT INTO bindattempt (openid, ok, at) VALUES (?, 1, ?)", (sender, at))
        return f"绑定成功！欢迎{branch}的{name}同志。\n发送「答题」参加本月党史党纪知识测试，发送「帮助」查看全部功能。"


FLOOR_METHOD = {
    "积分": "points",
    "排行榜": "board",
    "quiz answer": "quiz",
    "practice answer": "practice",
    "绑定": "bind",
}


# ---------------------------------------------------------------- measuring


@dataclass
class Samples:
    cpu: list[float] = field(default_factory=list)  # seconds per call
    wall: list[float] = field(default_factory=list)
    statements: list[int] = field(default_factory=list)  # SQL SQLite ran per message, BEGIN/COMMIT excluded
    sqlite_statements: list[int] = field(default_factory=list)  # everything SQLite ran, BEGIN/COMMIT included
    via_sqlalchemy: list[int] = field(default_factory=list)  # what went through SQLAlchemy's cursor execute
    example: str = ""


TRANSACTION = ("BEGIN", "COMMIT", "ROLLBACK", "SAVEPOINT", "RELEASE")


def is_sql(statement: str) -> bool:
    """A statement that reads or writes data (not transaction control)."""
    return not statement.lstrip().upper().startswith(TRANSACTION)


class Counter:
    """Counts statements on a store's sqlite3 connections (trace callback: everything
    SQLite runs, whether it came through SQLAlchemy or straight from the DBAPI cursor) and
    on its engine (SQLAlchemy's cursor-execute event), only while ``on``."""

    def __init__(self, store: Store) -> None:
        self.on = False
        self.sql = 0  # via SQLAlchemy, transaction control excluded
        self.sqlite = 0  # everything
        self.sqlite_sql = 0  # everything but transaction control
        event.listen(store.engine, "before_cursor_execute", self._before)
        event.listen(store.engine, "connect", self._connect)
        store.engine.dispose()  # new connections get the trace callback

    def _before(self, conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if self.on and is_sql(statement):
            self.sql += 1

    def _trace(self, statement: str) -> None:
        if self.on:
            self.sqlite += 1
            self.sqlite_sql += is_sql(statement)

    def _connect(self, dbapi_conn: Any, _record: Any) -> None:
        if hasattr(dbapi_conn, "set_trace_callback"):
            dbapi_conn.set_trace_callback(self._trace)


def inbound(sender: str, text: str, now: datetime) -> Inbound:
    return Inbound(channel="wechat", sender=sender, kind="text", key=uuid.uuid4().hex, created_at=now, text=text)


class Driver:
    """Walks a conversation, answering each step; keeps the last reply between runs."""

    def __init__(self, conversation: Conversation) -> None:
        self.conversation = conversation
        self.reply: str | None = None

    def run(self, answer: Callable[[str, str, bool], str], timed_calls: int, samples: Samples | None) -> Iterator[int]:
        """Go on until ``timed_calls`` timed steps are done; yields after each."""
        done = 0
        process_time, perf_counter = time.process_time, time.perf_counter
        while done < timed_calls:
            step = self.conversation.send(self.reply) if self.reply is not None else next(self.conversation)
            sender, text, timed = step
            if not timed:
                self.reply = answer(sender, text, False)
                continue
            c0, w0 = process_time(), perf_counter()
            self.reply = answer(sender, text, True)
            c1, w1 = process_time(), perf_counter()
            if samples is not None:
                samples.cpu.append(c1 - c0)
                samples.wall.append(w1 - w0)
                samples.example = samples.example or self.reply
            done += 1
            yield done


def conversation_for(reply: str, people: list[Person], waiting: list[Person], clock: Clock) -> Conversation:
    rng = random.Random(reply)
    if reply == "积分":
        return same_words(people, "积分")
    if reply == "排行榜":
        return same_words(people, "排行榜")
    # Answers come from the last 100 members (set-up had the first ones finish the month):
    # every one of them opens a quiz (untimed) before the first timed answer, which at
    # city size would otherwise take minutes.
    if reply == "quiz answer":
        return monthly_quiz(people[-ANSWERING:], clock, rng)
    if reply == "practice answer":
        return practice(people[-ANSWERING:], rng)
    return binding(waiting)


def measure_engine(
    reply: str, db: Path, config: Config, people: list[Person], waiting: list[Person], clock: Clock, args: Any
) -> Samples:
    store = create_store(config.database.url)
    counter = Counter(store)
    engine = Engine(store, config, build_registry(), clock=clock)

    def answer(sender: str, text: str, timed: bool) -> str:
        return engine.handle(inbound(sender, text, clock.now))

    samples = Samples()
    driver = Driver(conversation_for(reply, people, waiting, clock))
    for _ in driver.run(answer, args.warmup, None):
        pass
    for _ in driver.run(answer, args.calls, samples):
        pass

    def counted(sender: str, text: str, timed: bool) -> str:
        counter.on = timed  # one timed message per count; set-up steps are not counted
        try:
            return answer(sender, text, timed)
        finally:
            counter.on = False

    for _ in driver.run(counted, args.count_calls, None):
        samples.statements.append(counter.sqlite_sql)
        samples.sqlite_statements.append(counter.sqlite)
        samples.via_sqlalchemy.append(counter.sql)
        counter.sql = counter.sqlite = counter.sqlite_sql = 0
    store.dispose()
    return samples


def measure_floor(
    reply: str, copy: Path, config: Config, people: list[Person], waiting: list[Person], clock: Clock, args: Any
) -> Samples:
    setup_store = create_store(f"sqlite:///{copy}")
    setup = Engine(setup_store, config, build_registry(), clock=clock)  # untimed steps only
    floor = Floor(copy, config)
    method = FLOOR_METHOD[reply]
    trace = {"on": False, "n": 0, "sql": 0}

    def traced(statement: str) -> None:
        if trace["on"]:
            trace["n"] += 1
            trace["sql"] += is_sql(statement)

    floor.conn.set_trace_callback(traced)

    def answer(sender: str, text: str, timed: bool) -> str:
        if not timed:
            return setup.handle(inbound(sender, text, clock.now))
        return floor.handle(method, sender, text, uuid.uuid4().hex, clock())

    samples = Samples()
    driver = Driver(conversation_for(reply, people, waiting, clock))
    for _ in driver.run(answer, args.warmup, None):
        pass
    for _ in driver.run(answer, args.calls, samples):
        pass

    def counted(sender: str, text: str, timed: bool) -> str:
        trace["on"] = timed
        try:
            return answer(sender, text, timed)
        finally:
            trace["on"] = False

    for _ in driver.run(counted, args.count_calls, None):
        samples.sqlite_statements.append(trace["n"])
        samples.statements.append(trace["sql"])
        trace["n"] = trace["sql"] = 0
    floor.close()
    setup_store.dispose()
    return samples


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    rank = max(1, min(len(ordered), int(-(-q * len(ordered) // 100))))
    return ordered[rank - 1]


def us(seconds: float) -> str:
    return f"{seconds * 1e6:,.0f}"


def stmt_text(counts: list[int]) -> str:
    if not counts:
        return "-"
    low, high, mean = min(counts), max(counts), statistics.fmean(counts)
    return f"{low}" if low == high else f"{mean:.1f} ({low}–{high})"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--members", type=int, default=50, help="bound members (they send 积分, 排行榜, answers)")
    p.add_argument("--branches", type=int, default=5, help="branches the members are spread over")
    p.add_argument("--city", action="store_true", help="city size: 50,000 bound members in 300 branches")
    p.add_argument("--calls", type=int, default=1000, help="timed calls per reply (engine and floor each)")
    p.add_argument("--warmup", type=int, default=100, help="untimed calls per reply before timing")
    p.add_argument("--count-calls", type=int, default=30, help="calls in the statement-counting pass")
    p.add_argument("--only", choices=REPLIES, action="append", help="measure only this reply (repeatable)")
    p.add_argument("--show-sql", action="store_true", help="print the SQL of one message of each reply")
    p.add_argument("--json", type=Path, help="also write the results here")
    p.add_argument("--keep-tmp", action="store_true")
    args = p.parse_args(argv)
    if args.city:
        args.members, args.branches = 50_000, 300
    console = Console(width=max(190, int(os.environ.get("COLUMNS", "190"))))
    replies = [r for r in REPLIES if not args.only or r in args.only]
    binders = (args.warmup + args.calls + args.count_calls + 1) if "绑定" in replies else 0
    people, waiting = make_roster(args.members, binders, args.branches)
    tmp = Path(tempfile.mkdtemp(prefix="branchbot-handler-"))
    load = os.getloadavg()
    head = subprocess.run(["git", "-C", str(ROOT), "describe", "--always", "--dirty"], capture_output=True, text=True)
    args.code = head.stdout.strip() or "unknown"
    console.print(
        f"[bold]bench/handler.py[/bold] on {ROOT} at {args.code}: {args.members:,} bound members in {args.branches} branches"
        f" (+{binders:,} unbound roster entries for 绑定); {args.calls:,} timed calls a reply after {args.warmup} warm-up;"
        f" load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} on {os.cpu_count()} CPUs; temp dir {tmp}",
        highlight=False,
    )
    started = time.perf_counter()
    db, config = set_up(tmp, people, waiting, args.branches)
    console.print(f"set up in {time.perf_counter() - started:.1f} s", highlight=False)
    if args.show_sql:
        show_sql(db, config, people, waiting, replies, console)
    results: dict[str, tuple[Samples, Samples]] = {}
    clock_time = START
    for reply in replies:
        copy = tmp / f"floor-{FLOOR_METHOD[reply]}.db"
        snapshot(db, copy)
        engine_clock, floor_clock = Clock(clock_time), Clock(clock_time)
        t0 = time.perf_counter()
        engine = measure_engine(reply, db, config, people, waiting, engine_clock, args)
        floor = measure_floor(reply, copy, config, people, waiting, floor_clock, args)
        clock_time = engine_clock.now
        copy.unlink()
        for suffix in ("-wal", "-shm"):
            Path(f"{copy}{suffix}").unlink(missing_ok=True)
        results[reply] = (engine, floor)
        console.print(
            f"• {reply}: engine {us(statistics.fmean(engine.cpu))} µs CPU, floor {us(statistics.fmean(floor.cpu))} µs"
            f" ({time.perf_counter() - t0:.0f} s)",
            highlight=False,
        )
    report(results, args, load, console)
    if args.json:
        args.json.write_text(json.dumps(as_json(results, args, load), ensure_ascii=False, indent=2), encoding="utf-8")
    if args.keep_tmp:
        console.print(f"kept {tmp}")
    else:
        import shutil

        shutil.rmtree(tmp, ignore_errors=True)
    console.print(
        f"total {time.perf_counter() - started:.0f} s; load average now {' '.join(f'{x:.2f}' for x in os.getloadavg())}"
    )
    return 0


def report(results: dict[str, tuple[Samples, Samples]], args: Any, load: tuple[float, ...], console: Console) -> None:
    table = Table(
        title=f"CPU per message inside Engine.handle vs the raw-sqlite3 floor ({args.members:,} bound members, "
        f"{args.calls:,} calls each, µs)"
    )
    for col in (
        "reply",
        "engine mean",
        "p50",
        "p95",
        "p99",
        "floor mean",
        "p50",
        "p95",
        "p99",
        "× floor",
        "SQL/msg",
        "floor SQL",
        "via SQLAlchemy",
        "+BEGIN/COMMIT",
        "floor",
    ):
        table.add_column(col, justify="left" if col == "reply" else "right", no_wrap=True)
    for reply, (engine, floor) in results.items():
        ratio = statistics.fmean(engine.cpu) / statistics.fmean(floor.cpu)
        target = reply in ("积分", "排行榜", "quiz answer")
        colour = ("green" if ratio <= 3 else "red") if target else "white"
        table.add_row(
            reply,
            us(statistics.fmean(engine.cpu)),
            *(us(percentile(engine.cpu, q)) for q in (50, 95, 99)),
            us(statistics.fmean(floor.cpu)),
            *(us(percentile(floor.cpu, q)) for q in (50, 95, 99)),
            f"[{colour}]{ratio:.1f}×[/{colour}]",
            stmt_text(engine.statements),
            stmt_text(floor.statements),
            stmt_text(engine.via_sqlalchemy),
            stmt_text(engine.sqlite_statements),
            stmt_text(floor.sqlite_statements),
        )
    console.print(table)
    console.print(
        "CPU is time.process_time per call. 'SQL/msg': statements SQLite ran per message (its trace callback; "
        "BEGIN/COMMIT not counted), 'via SQLAlchemy': those of them sent through SQLAlchemy's cursor execute (the "
        "rest went straight to the DBAPI cursor), '+BEGIN/COMMIT': all of them. Targets (issue 14): "
        "≤ 3× the floor for 积分, 排行榜 and the quiz answer; ≤ 4 statements for 积分.",
        highlight=False,
    )
    for reply, (engine, floor) in results.items():
        if reply in ("积分", "排行榜", "quiz answer"):
            ratio = statistics.fmean(engine.cpu) / statistics.fmean(floor.cpu)
            console.print(f"{'PASS' if ratio <= 3 else 'FAIL'}  {reply}: {ratio:.1f}× the floor (target ≤ 3×)")
    if "积分" in results:
        sql = max(results["积分"][0].statements)
        console.print(f"{'PASS' if sql <= 4 else 'FAIL'}  积分: {sql} SQL statements per message (target ≤ 4)")
    console.print(
        f"load average at the start {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} ({os.cpu_count()} CPUs, shared)"
    )


def as_json(results: dict[str, tuple[Samples, Samples]], args: Any, load: tuple[float, ...]) -> dict[str, Any]:
    def summary(s: Samples) -> dict[str, Any]:
        return {
            "cpu_us_mean": round(statistics.fmean(s.cpu) * 1e6, 1),
            **{f"cpu_us_p{q}": round(percentile(s.cpu, q) * 1e6, 1) for q in (50, 95, 99)},
            "wall_us_p50": round(percentile(s.wall, 50) * 1e6, 1),
            "sql_per_message": statistics.fmean(s.statements) if s.statements else None,
            "sql_via_sqlalchemy": statistics.fmean(s.via_sqlalchemy) if s.via_sqlalchemy else None,
            "sqlite_statements_per_message": statistics.fmean(s.sqlite_statements) if s.sqlite_statements else None,
        }

    return {
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "code": args.code,
        "members": args.members,
        "branches": args.branches,
        "calls": args.calls,
        "load_average": load,
        "replies": {
            r: {"engine": summary(e), "floor": summary(f), "ratio": statistics.fmean(e.cpu) / statistics.fmean(f.cpu)}
            for r, (e, f) in results.items()
        },
    }


def show_sql(
    db: Path, config: Config, people: list[Person], waiting: list[Person], replies: list[str], console: Console
) -> None:
    """One message of each reply with the statements SQLite ran, on a throw-away copy."""
    copy = db.with_name("show-sql.db")
    snapshot(db, copy)
    store = create_store(f"sqlite:///{copy}")
    clock = Clock(START)
    seen: list[str] = []
    event.listen(store.engine, "connect", lambda c, _r: c.set_trace_callback(seen.append))
    store.engine.dispose()
    engine = Engine(store, config, build_registry(), clock=clock)
    for reply in replies:
        conversation = conversation_for(reply, people, waiting, clock)
        answer_text: str | None = None
        while True:
            sender, text, timed = conversation.send(answer_text) if answer_text is not None else next(conversation)
            seen.clear()
            answer_text = engine.handle(inbound(sender, text, clock.now))
            if timed:
                break
        console.rule(f"{reply}: {text!r} -> {len(seen)} statements")
        for statement in seen:
            console.print("  " + " ".join(statement.split())[:300], highlight=False, markup=False)
    store.dispose()


if __name__ == "__main__":
    sys.exit(main())
