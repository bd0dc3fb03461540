"""Configuration: config.toml (or the file named by ``--config`` or ``BRANCHBOT_CONFIG``)
validated with pydantic, overridable by environment.

Any key can be overridden by ``BRANCHBOT__SECTION__KEY`` (or ``BRANCHBOT__KEY`` for a
top-level key) so that secrets never need to be written into a file. A value that starts
with ``[`` or ``{`` is decoded as JSON (lists and tables); numbers and booleans are left to
pydantic, which knows the field's type. A relative SQLite path is relative to the config
file. This module checks shapes and ranges only: whether a ``[holidays.YYYY]`` name is a
festival is the calendar's rule (``scheduler.calendar.unknown_festivals``, run by the CLI).
"""

from __future__ import annotations

import json
import os
import re
import tomllib
from datetime import date
from pathlib import Path
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

ENV_PREFIX = "BRANCHBOT__"
SECRET_KEYS = {"token", "encoding_aes_key", "app_secret", "secret", "keys"}
_AES_KEY = re.compile(r"^[A-Za-z0-9]{43}$")
_TOKEN = re.compile(r"^[A-Za-z0-9]{3,32}$")


class ConfigError(Exception):
    """A configuration problem an operator can fix; the message names the key."""


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


def _check_token(value: str) -> str:
    if value and not _TOKEN.match(value):
        raise ValueError("Token 只能由 3-32 位英文字母或数字组成")
    return value


def _check_aes_key(value: str) -> str:
    if value and not _AES_KEY.match(value):
        raise ValueError("EncodingAESKey 必须是 43 位英文字母或数字")
    return value


Token = Annotated[str, AfterValidator(_check_token)]
AesKey = Annotated[str, AfterValidator(_check_aes_key)]


class ServerConfig(_Section):
    host: str = "127.0.0.1"
    port: int = Field(8000, ge=1, le=65535)
    workers: int = Field(1, ge=1, le=64)  # serving processes (each also runs the outbox and scheduler)
    # Slow clients: an idle kept-alive connection, a request's headers and its body get
    # this long before the connection is closed; beyond limit_concurrency, 503.
    keep_alive_seconds: int = Field(5, ge=1, le=300)
    header_timeout_seconds: float = Field(10, gt=0, le=300)
    body_timeout_seconds: float = Field(20, gt=0, le=300)
    limit_concurrency: int = Field(1000, ge=1)


class DatabaseConfig(_Section):
    url: str = "sqlite:///data/branchbot.db"
    lock_timeout_seconds: float = Field(10.0, gt=0, le=600)  # SQLite: the longest wait for the writer lock

    @field_validator("url")
    @classmethod
    def _known_scheme(cls, value: str) -> str:
        if not value.startswith(("sqlite://", "postgresql+psycopg://", "postgresql://")):
            raise ValueError("只支持 sqlite:/// 或 postgresql+psycopg:// 开头的数据库地址")
        userinfo = value.partition("://")[2].rpartition("@")[0]
        if "@" in userinfo or "/" in userinfo or userinfo.count(":") > 1:
            # The value is not quoted back: it holds the password.
            raise ValueError(
                "数据库地址中的密码含有 @、: 或 / 等字符，需按 URL 编码书写（@ 写成 %40，: 写成 %3A，/ 写成 %2F）"
            )
        return value


class WechatConfig(_Section):
    app_id: str = ""
    token: Token = ""
    encoding_aes_key: AesKey = ""
    app_secret: str = ""
    mode: Literal["plain", "compatible", "safe"] = "plain"
    api_base: str = "https://api.weixin.qq.com"
    replay_window: int = Field(300, ge=0)
    reply_budget_ms: int = Field(3000, ge=100, le=4500)
    # Template message used when the 48-hour customer-service window is closed (verified
    # service accounts only). fields maps a template key to one of: title, text, date.
    template_id: str = ""
    template_fields: dict[str, Literal["title", "text", "date", "branch"]] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _aes_needed(self) -> WechatConfig:
        if self.mode != "plain" and not self.encoding_aes_key:
            raise ValueError(f"mode = {self.mode} 需要填写 encoding_aes_key")
        if self.mode != "plain" and not self.app_id:
            raise ValueError(f"mode = {self.mode} 需要填写 app_id（解密时校验）")
        return self


class WecomConfig(_Section):
    corp_id: str = ""
    agent_id: str = ""
    secret: str = ""
    token: Token = ""
    encoding_aes_key: AesKey = ""
    api_base: str = "https://qyapi.weixin.qq.com"
    card_url: str = ""  # where a textcard's 详情 button leads

    @property
    def enabled(self) -> bool:
        return bool(self.corp_id and self.token and self.encoding_aes_key)


class OutboxConfig(_Section):
    concurrency: int = Field(8, ge=1, le=64)
    wechat_per_second: float = Field(20, gt=0)  # customer-service / template sends
    wecom_per_second: float = Field(10, gt=0)  # message/send calls (each up to 1000 users)
    robot_per_minute: int = Field(20, ge=1, le=20)  # per group robot, the platform's cap
    lease_seconds: int = Field(60, ge=5)
    max_attempts: int = Field(5, ge=1, le=20)  # accepted for old configs; retries now end at retry_window
    retry_base_seconds: float = Field(2.0, ge=0)
    retry_max_seconds: float = Field(600.0, gt=0)  # the longest wait between two tries of a delivery
    retry_window: int = Field(21600, ge=0)  # seconds a delivery is retried after its first failure (6 hours)
    poll_seconds: float = Field(1.0, gt=0)
    timeout_seconds: float = Field(10.0, gt=0)
    wecom_batch: int = Field(1000, ge=1, le=1000)  # user ids per message/send call (the platform allows 1000)


class RobotConfig(_Section):
    """Group robots: branch name → webhook key (keep keys in the environment)."""

    keys: dict[str, str] = Field(default_factory=dict)
    api_base: str = "https://qyapi.weixin.qq.com"


_HHMM = re.compile(r"^([01]\d|2[0-3]):[0-5]\d$")


def _check_time(value: str) -> str:
    if not _HHMM.match(value):
        raise ValueError(f"时间「{value}」应为 HH:MM，如 09:00")
    return value


Clock24 = Annotated[str, AfterValidator(_check_time)]


class SchedulerConfig(_Section):
    enabled: bool = True
    monthly_quiz_day: int = Field(1, ge=1, le=28)
    monthly_quiz_time: Clock24 = "09:00"
    quiz_reminder_days_before_end: int = Field(3, ge=0, le=20)
    quiz_reminder_time: Clock24 = "19:00"
    birthday_time: Clock24 = "08:30"
    holiday_time: Clock24 = "09:30"
    meeting_reminder_time: Clock24 = "18:00"
    housekeeping_time: Clock24 = "03:30"
    keep_records_days: int = Field(30, ge=1)  # message keys and binding attempts older than this are deleted
    # Seconds after its time a missed run (e.g. while the process was down) still runs, per job.
    misfire_grace: dict[str, int] = Field(default_factory=dict)
    default_misfire_grace: int = Field(6 * 3600, ge=0)
    templates_dir: str = ""  # a folder of edited templates; missing files fall back to the bundled ones
    integrity_day: int = Field(10, ge=1, le=28)  # 每月廉政提醒: day of the month
    integrity_time: Clock24 = "09:00"
    integrity_file: str = ""  # the admins' own 廉政提醒 (same format as scheduler/templates/integrity_reminders.toml)


class RemindersConfig(_Section):
    days_before: int = Field(2, ge=1, le=10)


class MeetingRule(_Section):
    """A recurring meeting: e.g. 主题党日 on the first Friday of each month at 15:00."""

    type: Literal["支部党员大会", "支委会", "党小组会", "党课", "主题党日"]
    branch: str = "*"  # a branch name, or * for every branch
    months: list[int] = Field(default_factory=lambda: list(range(1, 13)))
    weekday: int = Field(5, ge=1, le=7)  # 1 = Monday
    nth: int = Field(1, ge=-1, le=5)  # 1 = first, -1 = last
    time: Clock24 = "15:00"
    place: str = "党员活动室"
    topic: str = ""

    @field_validator("months")
    @classmethod
    def _months(cls, value: list[int]) -> list[int]:
        if not value or any(m < 1 or m > 12 for m in value):
            raise ValueError("months 应为 1-12 的月份列表")
        return value


class PracticeConfig(_Section):
    daily_cap: int = Field(5, ge=0)  # practice points a day (1 per correct answer)
    challenge_daily_cap: int = Field(5, ge=0)  # challenge points a day (1 per answer in a streak)


class ReviewConfig(_Section):
    daily_limit: int = Field(10, ge=1, le=100)  # wrong-answer reviews a day


class QuizConfig(_Section):
    questions_per_paper: int = Field(10, ge=1, le=50)
    points_per_correct: int = Field(10, ge=0, le=1000)
    categories: list[str] = Field(default_factory=list)


MenuType = Literal[
    "click",
    "view",
    "scancode_waitmsg",
    "scancode_push",
    "pic_sysphoto",
    "pic_photo_or_album",
    "pic_weixin",
    "location_select",
    "miniprogram",
]


class MenuButton(_Section):
    """One Official Account menu button; a button with sub_button is a group (no type)."""

    name: str
    type: MenuType = "click"
    key: str = ""  # for click and scancode_*: the key the bot receives (registered in handlers)
    url: str = ""  # for view (and miniprogram's fallback)
    appid: str = ""
    pagepath: str = ""
    sub_button: list[MenuButton] = Field(default_factory=list)

    @model_validator(mode="after")
    def _complete(self) -> MenuButton:
        if self.sub_button:
            if len(self.sub_button) > 5:
                raise ValueError(f"「{self.name}」最多 5 个子菜单")
            return self
        if self.type == "view" and not self.url:
            raise ValueError(f"「{self.name}」是链接菜单（view），需要填写 url")
        if self.type != "view" and self.type != "miniprogram" and not self.key:
            raise ValueError(f"「{self.name}」需要填写 key")
        if len(self.key.encode()) > 128:
            raise ValueError(f"「{self.name}」的 key 不能超过 128 字节")
        return self


def _default_menu() -> list[MenuButton]:
    return [
        MenuButton(name="答题", key="QUIZ"),
        MenuButton(
            name="积分·排行",
            sub_button=[MenuButton(name="我的积分", key="POINTS"), MenuButton(name="排行榜", key="RANK")],
        ),
        MenuButton(
            name="更多",
            sub_button=[
                MenuButton(name="练习", key="PRACTICE"),
                MenuButton(name="错题", key="REVIEW"),
                MenuButton(name="扫码签到", type="scancode_waitmsg", key="CHECKIN_SCAN"),
                MenuButton(name="帮助", key="HELP"),
            ],
        ),
    ]


class MenuConfig(_Section):
    """The Official Account menu that ``branchbot menu push`` creates."""

    buttons: list[MenuButton] = Field(default_factory=_default_menu)

    @field_validator("buttons")
    @classmethod
    def _size(cls, value: list[MenuButton]) -> list[MenuButton]:
        if not 1 <= len(value) <= 3:
            raise ValueError("一级菜单应为 1-3 个")
        for top in value:
            if len(top.name.encode()) > 16:
                raise ValueError(f"一级菜单「{top.name}」过长：最多 4 个汉字或 16 个字母")
            for sub in top.sub_button:
                if sub.sub_button:
                    raise ValueError(f"「{sub.name}」：菜单最多两级")
                if len(sub.name.encode()) > 60:
                    raise ValueError(f"子菜单「{sub.name}」过长：最多 20 个汉字")
        return value


class SimulatorConfig(_Section):
    enabled: bool = False


class ConsoleConfig(_Section):
    """The web console (管理后台): opened from the bot's 后台 link or WeCom OAuth2."""

    enabled: bool = True
    base_url: str = ""  # empty: http://{server.host}:{server.port}
    session_minutes: int = Field(30, ge=5, le=480)  # idle expiry; a session never outlives 8 hours
    oauth_authorize_url: str = "https://open.weixin.qq.com/connect/oauth2/authorize"  # 政务微信 has its own

    @field_validator("base_url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        if value and not re.match(r"^https?://[^/\s]+", value):
            raise ValueError("base_url 应以 http:// 或 https:// 开头，如 https://dangjian.example.cn")
        return value.rstrip("/")


class Config(_Section):
    server: ServerConfig = Field(default_factory=ServerConfig)
    database: DatabaseConfig = Field(default_factory=DatabaseConfig)
    wechat: WechatConfig = Field(default_factory=WechatConfig)
    wecom: WecomConfig = Field(default_factory=WecomConfig)
    quiz: QuizConfig = Field(default_factory=QuizConfig)
    practice: PracticeConfig = Field(default_factory=PracticeConfig)
    review: ReviewConfig = Field(default_factory=ReviewConfig)
    simulator: SimulatorConfig = Field(default_factory=SimulatorConfig)
    menu: MenuConfig = Field(default_factory=MenuConfig)
    outbox: OutboxConfig = Field(default_factory=OutboxConfig)
    robots: RobotConfig = Field(default_factory=RobotConfig)
    scheduler: SchedulerConfig = Field(default_factory=SchedulerConfig)
    reminders: RemindersConfig = Field(default_factory=RemindersConfig)
    # The State Council's schedule for a year the packages do not know yet:
    # [holidays.2027] 春节 = ["2027-02-05", "2027-02-11"]  调休 = ["2027-02-14"]
    holidays: dict[int, dict[str, list[date]]] = Field(default_factory=dict)
    meetings: list[MeetingRule] = Field(default_factory=list)
    console: ConsoleConfig = Field(default_factory=ConsoleConfig)
    timezone: str = "Asia/Shanghai"

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"未知时区 {value!r}") from exc
        return value

    @field_validator("holidays")
    @classmethod
    def _holiday_ranges(cls, value: dict[int, dict[str, list[date]]]) -> dict[int, dict[str, list[date]]]:
        # Only the shape: whether a name is a festival is the calendar's rule
        # (scheduler.calendar.unknown_festivals, checked by the CLI after loading).
        for year, entries in value.items():
            for name, days in entries.items():
                if name == "调休":
                    continue
                if len(days) != 2 or days[0] > days[1] or days[0].year != year:
                    raise ValueError(f"[holidays.{year}] {name} 应写成 [首日, 末日]，且在 {year} 年内")
        return value

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @property
    def console_base_url(self) -> str:
        """Where links to the console point: console.base_url, or this server's address."""
        return self.console.base_url or f"http://{self.server.host}:{self.server.port}"


def _decode_env_value(raw: str) -> Any:
    text = raw.strip()
    if text[:1] in ("[", "{"):  # numbers and booleans are left to pydantic, which knows the field's type
        try:
            return json.loads(text)
        except json.JSONDecodeError:
            return raw
    return raw


def env_overrides(environ: dict[str, str]) -> dict[str, Any]:
    """Nested dict built from BRANCHBOT__SECTION__KEY variables."""
    tree: dict[str, Any] = {}
    for name, raw in environ.items():
        if not name.startswith(ENV_PREFIX):
            continue
        path = [part.lower() for part in name[len(ENV_PREFIX) :].split("__") if part]
        if not path:
            continue
        node = tree
        for part in path[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise ConfigError(f"环境变量 {name} 与其他覆盖项冲突")
        node[path[-1]] = _decode_env_value(raw)
    return tree


def _merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged


_ERROR_TEXT: dict[str, str] = {
    "extra_forbidden": "未知的配置项",
    "missing": "缺少此项",
    "int_parsing": "应为整数",
    "int_type": "应为整数",
    "int_from_float": "应为整数",
    "float_parsing": "应为数字",
    "float_type": "应为数字",
    "bool_parsing": "应为 true 或 false",
    "bool_type": "应为 true 或 false",
    "string_type": "应为文本（TOML 中加引号）",
    "dict_type": "应为表，如 [section] 或 {{ key = value }}",
    "list_type": "应为列表，如 [\"a\", \"b\"]",
    "date_parsing": "应为日期，如 2027-02-05",
    "date_from_datetime_parsing": "应为日期，如 2027-02-05",
    "date_type": "应为日期，如 2027-02-05",
    "greater_than_equal": "应不小于 {ge}",
    "greater_than": "应大于 {gt}",
    "less_than_equal": "应不大于 {le}",
    "less_than": "应小于 {lt}",
    "literal_error": "应为以下之一：{expected}",
}


def _error_text(err: Any) -> str:
    """pydantic's message in Chinese (ours are Chinese already; unknown kinds keep English)."""
    template = _ERROR_TEXT.get(err["type"])
    if template is None:
        return str(err["msg"]).removeprefix("Value error, ")
    ctx = {k: str(v).replace("' or '", "'、'").replace("', '", "'、'") for k, v in (err.get("ctx") or {}).items()}
    try:
        return template.format(**ctx)
    except (KeyError, IndexError):
        return str(err["msg"])


def _format_errors(exc: ValidationError, origin: str) -> str:
    lines = [f"配置有误（{origin}）："]
    for err in exc.errors():
        key = ".".join(str(p) for p in err["loc"]) or "(顶层)"
        lines.append(f"  {key}：{_error_text(err)}")
    return "\n".join(lines)


def load_config(path: str | Path | None = None, environ: dict[str, str] | None = None) -> Config:
    """Read, merge and validate; raise ConfigError naming the offending key."""
    environ = dict(os.environ if environ is None else environ)
    config_path = Path(path) if path else Path(environ.get("BRANCHBOT_CONFIG", "config.toml"))
    data: dict[str, Any] = {}
    if config_path.exists():
        try:
            data = tomllib.loads(config_path.read_text(encoding="utf-8"))
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"配置文件 {config_path} 不是合法的 TOML：{exc}") from exc
    elif path:
        raise ConfigError(f"找不到配置文件 {config_path}")
    data = _merge(data, env_overrides(environ))
    try:
        config = Config.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(_format_errors(exc, str(config_path))) from exc
    config.database.url = _anchor_sqlite(config.database.url, config_path.resolve().parent)
    return config


def _anchor_sqlite(url: str, base: Path) -> str:
    """Relative SQLite paths are relative to the config file, not to the cwd."""
    prefix = "sqlite:///"
    if url.startswith(prefix) and not url.startswith(prefix + "/") and ":memory:" not in url:
        return prefix + str(base / url[len(prefix) :])
    return url
