"""Odd input to every console page: a clear Chinese answer, never a 500 (ids past a
32-bit column, NUL bytes, months outside datetime's range, broken files)."""

from tests.support.console import client_for, csrf_of


def test_odd_ids_months_nul_bytes_and_broken_files_never_crash_the_console(env):
    wu = client_for(env, "吴管理")
    bad = []
    for path in [
        "/console/calendar?year=1901",
        "/console/calendar?year=2099",
        "/console/calendar?year=abc",
        "/console/exports/members.xlsx?month=0000-01",
        "/console/exports/members.xlsx?month=9999-12",
        "/console/exports/members.xlsx?month=2026-13",
        "/console/exports/answers.xlsx?month=1900-01",
        "/console/members?branch=99999999999",
        "/console/members?q=%00",
        "/console/questions?q=%2399999999999",
        "/console/questions?page=99999",
        "/console/audit?page=999999",
        "/console/meetings/99999999999",
        "/console/notices/99999999999",
        "/console/questions?category=%00",
        "/console/members?q=" + "x" * 300,
    ]:
        r = wu.get(path)
        if r.status_code >= 500:
            bad.append((path, r.status_code))
    from bot.console.exports import KINDS

    for kind in KINDS:
        for month in ("0001-01", "9999-12", "2026-02"):
            r = wu.get(f"/console/exports/{kind}.xlsx?month={month}")
            if r.status_code >= 500:
                bad.append((kind, month, r.status_code))
    csrf = csrf_of(wu)
    for when in ("0001-01-01 00:00", "9999-12-31 23:59", "2026-02-30 10:00", "2026-12-01T10:00:00"):
        r = wu.post("/console/notices/preview", data={"csrf": csrf, "text": "hi", "branch": "all", "when": when})
        if r.status_code >= 500:
            bad.append((when, r.status_code))
    for branch in ("99999999999", "-1", "0"):
        r = wu.post("/console/notices/preview", data={"csrf": csrf, "text": "hi", "branch": branch})
        if r.status_code >= 500:
            bad.append((branch, r.status_code))
    for name, data in (
        ("a.xlsx", b"PK\x03\x04garbage"),
        ("a.xlsx", b"not a zip"),
        ("a.csv", b"\xff\xfe\x00\x00"),
        ("a.csv", "姓名,手机号\n".encode("utf-16")),
        ("a.csv", b"\x00" * 100),
    ):
        for url in ("/console/members/upload", "/console/questions/upload"):
            r = wu.post(url, data={"csrf": csrf}, files={"file": (name, data, "application/octet-stream")})
            if r.status_code >= 500:
                bad.append((url, name, r.status_code))
    r = wu.post("/console/members/confirm", data={"csrf": csrf, "upload": "99999999999999"})
    if r.status_code >= 500:
        bad.append(("confirm", r.status_code))
    assert not bad, bad
