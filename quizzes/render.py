"""A question as a member sees it in chat, and the feedback on their answer.

Pure text from a stored question and the option order that member was shown: the chat
handlers (quiz, practice, review, contest) and the contest job render the same way.
"""

from __future__ import annotations

from bot.store import Question
from quizzes.letters import LETTERS
from quizzes.paper import option_order


def order_for(question: Question, seed: str) -> list[str]:
    """The option ids in the order one member sees them (true/false keeps 对 before 错)."""
    return option_order([o["id"] for o in question.options], seed, shuffle=question.kind != "判断")


def question_text(question: Question, order: list[str], header: str) -> str:
    texts = {o["id"]: o["text"] for o in question.options}
    lines = [f"{header}（{question.kind}）", question.stem]
    if question.kind == "判断":
        lines.append("请回复「对」或「错」。")
    else:
        lines += [f"{LETTERS[i]}. {texts[oid]}" for i, oid in enumerate(order)]
        lines.append("请回复一个字母，如 A。" if question.kind == "单选" else "请回复全部正确选项的字母，如 AC。")
    return "\n".join(lines)


def answer_key(question: Question, order: list[str]) -> str:
    """The right answer as this member saw it: 对/错, letters, and the text of a single choice."""
    texts = {o["id"]: o["text"] for o in question.options}
    if question.kind == "判断":
        return texts[question.answer[0]]
    key = "".join(LETTERS[order.index(oid)] for oid in sorted(question.answer, key=order.index))
    return key + (f"（{texts[question.answer[0]]}）" if question.kind == "单选" else "")


def feedback(question: Question, order: list[str], correct: bool) -> str:
    key = answer_key(question, order)
    head = "✅ 回答正确！" if correct else f"❌ 回答错误。正确答案：{key}"
    if correct and question.kind != "判断":
        head += f"答案：{key}"
    # A branch's own question may come without 解析 (accepted at import with a warning).
    explanation = f"\n解析：{question.explanation}" if question.explanation.strip() else ""
    return f"{head}{explanation}\n来源：{question.source}"
