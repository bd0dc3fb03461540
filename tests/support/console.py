"""Helpers for console tests: log a roster member in (through a real one-time link),
read the CSRF token from a page, and a TestClient per person."""

from __future__ import annotations

import re

from sqlmodel import select
from starlette.testclient import TestClient

from bot.auth import issue_link_token
from bot.store import Member


def member_named(env, name: str, tail: str = "") -> Member:
    with env.store.session() as db:
        found = [m for m in db.exec(select(Member).where(Member.name == name)).all() if m.phone.endswith(tail)]
        assert len(found) == 1, found
        return found[0]


def link_token(env, name: str, tail: str = "") -> str:
    with env.store.session() as db:
        member = db.get(Member, member_named(env, name, tail).id)
        return issue_link_token(db, member, env.clock())


def client_for(env, name: str | None, tail: str = "") -> TestClient:
    """A new browser (own cookie jar) logged in as ``name`` (None: logged out)."""
    client = TestClient(env.client.app, base_url="http://127.0.0.1:8000")
    if name is not None:
        response = client.get(f"/console/login?token={link_token(env, name, tail)}", follow_redirects=False)
        assert response.status_code == 303, response.text
    return client


def csrf_of(client: TestClient, path: str = "/console/") -> str:
    page = client.get(path)
    assert page.status_code == 200, page.text[:500]
    return re.search(r'name="csrf-token" content="([^"]+)"', page.text).group(1)


def set_member(env, name: str, tail: str = "", **values) -> None:
    with env.store.session() as db:
        member = db.get(Member, member_named(env, name, tail).id)
        for key, value in values.items():
            setattr(member, key, value)
        db.add(member)
