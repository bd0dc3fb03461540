"""Chat actors and what their messages left behind: bind a roster member to a WeChat
openid, the deliveries of a campaign by member, the latest campaign of a kind."""

from __future__ import annotations

from sqlmodel import select

from bot.store import Member
from bot.store.models import Campaign, Delivery


def bind(env, openid: str, name: str, tail: str):
    user = env.wechat(openid)
    assert "绑定成功" in user.say(f"绑定 {name} {tail}")
    return user


def deliveries(env, campaign_id: int) -> dict[str, str]:
    with env.store.session() as db:
        return {
            m.name + m.phone[-4:]: d.status
            for d, m in db.exec(
                select(Delivery, Member)
                .join(Member, Member.id == Delivery.member_id)
                .where(Delivery.campaign_id == campaign_id)
            ).all()
        }


def last_campaign(env, kind: str = "broadcast") -> Campaign:
    with env.store.session() as db:
        return db.exec(select(Campaign).where(Campaign.kind == kind).order_by(Campaign.id.desc())).first()
