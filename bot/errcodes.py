"""WeChat / WeCom errcodes in plain Chinese, for operators reading push results.

Kept in one place so `outbox status`, the deliveries export and any chat reply give the
same wording for the same failure.
"""

from __future__ import annotations

ERRCODE_TEXT: dict[int, str] = {
    45015: "超过 48 小时未互动",
    45047: "客服消息条数超限",
    81013: "企业微信账号无效",
    40001: "凭证无效",
    40003: "OpenID 无效",
    43004: "已取消关注",
    45009: "接口调用超过频率限制",
    -1: "微信系统繁忙",
    -2: "网络超时或服务器错误",
}


def errcode_reason(errcode: int | None, errmsg: str = "") -> str:
    """ "45015 超过 48 小时未互动"; an unknown code keeps WeChat's own errmsg so nothing is lost."""
    if errcode is None:
        return errmsg
    text = ERRCODE_TEXT.get(errcode) or errmsg
    return f"{errcode} {text}".strip()


def failure_text(errcode: int | None, errmsg: str | None) -> str:
    """Why one delivery failed, for the secretary who sent it (通知状态, the console's
    report and dashboard): the wording alone, without the code, since they cannot act on it."""
    if errcode is not None and errcode in ERRCODE_TEXT:
        return ERRCODE_TEXT[errcode]
    return errmsg or (f"错误码 {errcode}" if errcode else "原因不明")
