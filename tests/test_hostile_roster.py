"""Hostile input to the roster importer, completing test_hostile_wechat.py.

Random CSV (and some XLSX) with hostile cells. Only FileProblem escapes, every error names
file, row, column letter and header on one line, every non-blank row is either accepted or
named in an error, accepted values are valid, and an import through the CLI with any error
changes nothing.
"""

from __future__ import annotations

import csv
import re
import unicodedata
from datetime import date, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import HealthCheck, assume, event, given, settings
from hypothesis import strategies as st
from openpyxl.utils import get_column_letter
from sqlalchemy import func
from sqlmodel import select

from bot.roster import check_file as check_roster
from bot.store import Branch, Member, Role
from bot.store.models import (
    AuditEntry,
)
from bot.tabular import FileProblem
from tests.conftest import DATA
from tests.support.hostile import NO_SURROGATES

FUZZ = settings(
    max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow]
)
FEW = settings(FUZZ, max_examples=40)

HEADERS = ["姓名", "手机号", "支部", "入党日期", "角色", "微信OpenID", "企业微信账号"]


TODAY = date(2026, 11, 10)


FOUNDED = date(1921, 7, 1)


HOSTILE_CELLS = [
    "",
    " ",
    "=cmd|' /C calc'!A0",
    "+1+1",
    "-2+3",
    "@SUM(A1)",
    "\t=1",
    "=HYPERLINK(\"http://x\")",
    "2026-02-30",
    "1900-01-00",
    "9999-99-99",
    "2099-01-01",
    "0000-00-00",
    "1899-12-30",
    "1900-01-01",
    "2001/7/1",
    "2001年7月1日",
    "2001-07-01 00:00:00",
    "２００１-０７-０１",
    "٢٠٠١-٠٧-٠١",
    "１３９００００００９９",
    "١٣٩٠٠٠٠٠٠٩٩",
    "۱۳۹۰۰۰۰۰۰۹۹",
    "①③⑨⓪⓪⓪⓪⓪⓪⑨⑨",
    "13900000001",
    "139-0000-0099",
    "139 0000 0098",
    "+8613900000097",
    "1.39E+10",
    "139000000991",
    "党员",
    "书记",
    "管理员",
    "支部书记",
    "预备党员",
    "队长",
    "Admin",
    "\ufeff姓名",
    "\ufeff",
    "\u202e",
    "\u200b",
    "张\u200b三",
    "\x1b[31m",
    "🎉",
    "x" * 200,
    "张" * 51,
    "支" * 101,
    "liming",
    "wangshuji",
    "o-liming",
    "a b",
    "中文账号",
    "_x",
    "a" * 65,
    "\r\n",
    "\"",
    "'",
    ",",
    "\u2028",
    "\x7f",
    "NULL",
    "None",
    "nan",
]


cells = st.one_of(
    st.sampled_from(HOSTILE_CELLS),
    st.text(alphabet=NO_SURROGATES, max_size=20),
    st.text(alphabet=NO_SURROGATES, min_size=1000, max_size=3000),
)


ids = st.integers(0, 10**8 - 1)


@st.composite
def roster_rows(draw, cell=cells) -> list[dict]:
    """Mostly valid rows with a few hostile cells, so imports both succeed and fail."""
    rows = []
    for _ in range(draw(st.integers(0, 8))):
        row = {
            "姓名": draw(st.sampled_from(["张三", "李四", "王五", "买买提·艾力", "欧阳 娜娜"])),
            "手机号": f"136{draw(ids):08d}",
            "支部": draw(st.sampled_from(["第一党支部", "第二党支部", "新支部"])),
            "入党日期": draw(st.dates(FOUNDED, TODAY)).isoformat(),
            "角色": draw(st.sampled_from(["党员", "书记", "管理员", "", "预备党员"])),
            "微信OpenID": draw(st.sampled_from(["", "", f"o-{draw(ids)}"])),
            "企业微信账号": draw(st.sampled_from(["", "", f"u{draw(ids)}"])),
        }
        hostile = draw(st.sampled_from([0, 0, 0, 0, 1, 1, 2, 3]))  # half the rows stay clean
        for header in draw(st.lists(st.sampled_from(HEADERS), max_size=hostile)):
            row[header] = draw(cell)
        rows.append(row)
    return rows


HEADER_VARIANTS = ["plain", "plain", "plain", "shuffled", "extra", "decorated", "missing", "duplicate", "invisible"]


def header_row(draw) -> list[str]:
    variant = draw(st.sampled_from(HEADER_VARIANTS))
    headers = list(HEADERS)
    if variant == "shuffled":
        headers = draw(st.permutations(HEADERS))
    elif variant == "extra":
        headers.insert(draw(st.integers(0, len(headers))), draw(st.sampled_from(["备注", "", "性别", "=1+1"])))
    elif variant == "decorated":
        headers = [f" {h}（必填）" if i % 2 else f"{h}(选填) " for i, h in enumerate(headers)]
    elif variant == "missing":
        headers[draw(st.integers(0, 4))] = draw(st.sampled_from(["", "姓 名", "手機號", "Name", "\u202e姓名"]))
    elif variant == "duplicate":
        headers.append(draw(st.sampled_from(HEADERS)))
    elif variant == "invisible":
        i = draw(st.integers(0, len(headers) - 1))
        headers[i] = draw(st.sampled_from(["\ufeff", "\u200b", "\u200e"])) + headers[i]
    return headers


def canonical(header: str) -> str:
    text = unicodedata.normalize("NFKC", header).strip()
    text = "".join(c for c in text if unicodedata.category(c) != "Cf")
    return re.sub(r"\(.*?\)", "", text).replace(" ", "")


def write_csv(path: Path, headers: list[str], rows: list[dict], encoding: str) -> None:
    keys = [canonical(h) for h in headers]
    with path.open("w", newline="", encoding=encoding) as f:
        writer = csv.writer(f)
        writer.writerow(headers)
        for row in rows:
            writer.writerow([row.get(k, "") if k in HEADERS else "备注" for k in keys])


def is_blank(row: dict, keys: list[str]) -> bool:
    return all(str(row.get(k, "") if k in HEADERS else "备注").strip() == "" for k in keys)


INVISIBLE = {"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"}


def assert_storable(name, phone, branch, joined_on, role, openid, wecom_userid, today=TODAY) -> None:
    """What the importer may store (phone: 11 ASCII digits; no formula or invisible text)."""
    assert phone.isascii() and re.fullmatch(r"1[0-9]{10}", phone), phone
    for text, limit in ((name, 50), (branch, 100)):
        assert 1 <= len(text) <= limit and text == text.strip(), text
        assert text[0] not in "=+-@", text
        assert not any(unicodedata.category(c) in INVISIBLE for c in text), ascii(text)
    assert isinstance(joined_on, date) and FOUNDED <= joined_on <= today, joined_on
    assert role in {r.value for r in Role}, role
    assert not openid or re.fullmatch(r"[A-Za-z0-9_-]{1,64}", openid), openid
    assert not wecom_userid or re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}", wecom_userid), wecom_userid


ERROR = re.compile(r"(?P<file>[^ ]+) 第 (?P<row>\d+) 行 (?P<letter>[A-Z]+) 列「(?P<header>[^」]+)」：(?P<message>.+)")


def assert_checked(path: Path, headers: list[str], rows: list[dict]) -> None:
    """check_file's contract on one file."""
    try:
        checked = check_roster(path, TODAY)
    except FileProblem as problem:  # the documented whole-file refusal, naming the file
        event("whole file refused")
        assert str(problem).startswith(path.name) or path.name in str(problem), str(problem)
        assert "\n" not in str(problem) and len(str(problem)) < 600, str(problem)
        return
    keys = [canonical(h) for h in headers]
    event("rows refused" if checked.errors else "all rows accepted")
    for error in checked.errors:
        text = str(error)
        match = ERROR.fullmatch(text)
        assert match, f"error not in the 'file 第 N 行 X 列「header」：…' form: {text!r}"
        assert match["file"] == path.name and match["header"] in HEADERS
        assert match["letter"] == get_column_letter(keys.index(match["header"]) + 1), text
        assert 2 <= int(match["row"]) <= len(rows) + 1, text
        assert len(text) < 300, f"unbounded error message ({len(text)} chars)"
        assert not any(unicodedata.category(c) in INVISIBLE for c in text), f"invisible characters in {text!r}"
    accepted = {m.row for m in checked.members}
    failed = {e.row for e in checked.errors}
    assert not accepted & failed, "a row both accepted and refused"
    for number, row in enumerate(rows, start=2):
        if not is_blank(row, keys):
            assert number in accepted | failed, f"row {number} silently dropped"
    for m in checked.members:
        assert_storable(m.name, m.phone, m.branch, m.joined_on, m.role, m.openid, m.wecom_userid)
    for attribute in ("phone", "openid", "wecom_userid"):
        values = [getattr(m, attribute) for m in checked.members if getattr(m, attribute)]
        assert len(values) == len(set(values)), f"duplicate {attribute} accepted"


@FUZZ
@given(data=st.data(), rows=roster_rows(), encoding=st.sampled_from(["utf-8", "utf-8-sig", "utf-8-sig", "gb18030"]))
def test_roster_csv_checker_contract(tmp_path_factory, data, rows, encoding):
    headers = header_row(data.draw)
    path = tmp_path_factory.mktemp("roster") / "fuzz.csv"
    try:
        write_csv(path, headers, rows, encoding)
    except UnicodeEncodeError:
        assume(False)
    assert_checked(path, headers, rows)


xlsx_cells = st.one_of(
    cells,
    st.integers(-(10**12), 10**12),
    st.floats(allow_nan=False, allow_infinity=False),
    st.dates(date(1900, 1, 1), date(9999, 12, 31)),
    st.datetimes(datetime(1900, 1, 1)),
    st.booleans(),
    st.none(),
    st.sampled_from([13900000099, 13900000099.0, 1.39e10, 0, 0.5]),
)


@FEW
@given(data=st.data(), rows=roster_rows(cell=xlsx_cells))
def test_roster_xlsx_checker_contract(tmp_path_factory, data, rows):
    from openpyxl import Workbook
    from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE

    headers = header_row(data.draw)
    keys = [canonical(h) for h in headers]
    book = Workbook()
    sheet = book.active
    sheet.append(headers)
    for row in rows:
        for key, value in row.items():
            if isinstance(value, str):
                row[key] = ILLEGAL_CHARACTERS_RE.sub("", value)
        sheet.append([row.get(k) if k in HEADERS else "备注" for k in keys])
    path = tmp_path_factory.mktemp("roster") / "fuzz.xlsx"
    book.save(path)
    rows = [{k: ("" if v is None else v) for k, v in row.items()} for row in rows]
    for row in rows:  # a cell starting with '=' is a formula: read back (data_only, no cache) as empty
        for key, value in row.items():
            if isinstance(value, str) and value.startswith("="):
                row[key] = ""
    assert_checked(path, headers, rows)


@pytest.fixture(scope="module")
def cli_db(tmp_path_factory):
    """A CLI config on SQLite with the test roster imported once."""
    from bot.cli import main

    with pytest.MonkeyPatch.context() as patch:
        import os

        for name in list(os.environ):
            if name.startswith("BRANCHBOT__"):
                patch.delenv(name)
        folder = tmp_path_factory.mktemp("cli")
        config = folder / "config.toml"
        config.write_text(f'[database]\nurl = "sqlite:///{folder / "cli.db"}"\n', encoding="utf-8")
        assert main(["init", "--config", str(config)]) == 0
        assert main(["members", "import", str(DATA / "roster.csv"), "--config", str(config)]) == 0
        yield config


def member_table(config: Path) -> tuple:
    from bot.store import create_store

    store = create_store(f"sqlite:///{config.parent / 'cli.db'}")
    try:
        with store.session() as db:
            members = tuple(sorted(tuple(m.model_dump().items()) for m in db.exec(select(Member)).all()))
            branches = tuple(sorted((b.id, b.name) for b in db.exec(select(Branch)).all()))
            audit = db.exec(select(func.count()).select_from(AuditEntry)).one()
    finally:
        store.dispose()
    return members, branches, audit


cli_cells = st.one_of(
    st.sampled_from(HOSTILE_CELLS + ["[/x]", "[red]张三", "[bold"]),
    st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=20),
)


@FUZZ
@given(data=st.data(), rows=roster_rows(cell=cli_cells), no_transfer=st.booleans())
def test_cli_roster_import_is_all_or_nothing(cli_db, tmp_path_factory, capsys, data, rows, no_transfer):
    from bot.cli import main

    headers = data.draw(st.sampled_from([HEADERS, HEADERS, HEADERS, HEADERS[:5], [*HEADERS, "姓名"]]))
    path = tmp_path_factory.mktemp("import") / "fuzz.csv"
    write_csv(path, headers, rows, "utf-8-sig")
    before = member_table(cli_db)
    code = main(["members", "import", str(path), "--config", str(cli_db), *(["--no-transfer"] if no_transfer else [])])
    out, err = capsys.readouterr()
    after = member_table(cli_db)
    event(f"exit {code}")
    if code != 0:
        assert code in (1, 2), code
        assert after == before, "a refused import changed the member table"
        assert "fuzz.csv" in err, err
        return
    members, _, audit = after
    assert audit == before[2] + 1 and "名册导入完成" in out
    branches = dict(after[1])
    for fields in members:
        m = dict(fields)
        assert_storable(
            m["name"],
            m["phone"],
            branches[m["branch_id"]],
            m["joined_on"],
            m["role"],
            m["openid"] or "",
            m["wecom_userid"] or "",
            today=date.today() + timedelta(days=1),
        )
    stored = {dict(f)["phone"]: dict(f) for f in members}
    for row in rows:  # every listed member is there, in 在册, with the branch from the file
        if not is_blank(row, HEADERS[: len(headers)]):
            phone = re.sub(
                r"[\s-]", "", row["手机号"].translate(str.maketrans("０１２３４５６７８９－", "0123456789-"))
            )
            assert stored[phone]["status"] == "在册" and branches[stored[phone]["branch_id"]] == row["支部"].strip()


def test_cli_prints_cell_text_verbatim(cli_db, tmp_path, capsys):
    from bot.cli import main

    path = tmp_path / "markup.csv"
    path.write_text("姓名,手机号,支部,入党日期,角色\n张三,[/x],第一党支部,2001-07-01,党员\n", encoding="utf-8")
    assert main(["members", "import", str(path), "--config", str(cli_db)]) == 1
    assert "[/x]" in capsys.readouterr().err


def test_unicode_digits_never_become_a_phone_number(tmp_path):
    path = tmp_path / "digits.csv"
    path.write_text(
        "姓名,手机号,支部,入党日期,角色\n"
        "甲,1٣٩٠٠٠٠٠٠٠١,一支部,2001-07-01,党员\n"  # Python's \\d matches these
        "乙,1۳۹۰۰۰۰۰۰۰۲,一支部,2001-07-01,党员\n"
        "丙,1③⑨⓪⓪⓪⓪⓪⓪⓪③,一支部,2001-07-01,党员\n"
        "丁,139𝟎𝟎𝟎𝟎𝟎𝟎𝟎𝟓,一支部,2001-07-01,党员\n"
        "戊,１３９００００００06,一支部,2001-07-01,党员\n",
        encoding="utf-8",
    )
    checked = check_roster(path, TODAY)
    assert [e.row for e in checked.errors] == [2, 3, 4, 5]
    assert [m.phone for m in checked.members] == ["13900000006"]  # full-width digits are stored as ASCII
