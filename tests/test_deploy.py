"""deploy/: the compose file, the image, the systemd unit and the nginx site are checked as
far as this machine allows (the wheel and the image's command run in .ci/wheel-check)."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "deploy"
SECRETISH = re.compile(r"SECRET|PASSWORD|TOKEN|AES_KEY|_KEY$", re.I)


def compose() -> dict:
    return yaml.safe_load((DEPLOY / "compose.yaml").read_text(encoding="utf-8"))


def test_compose_runs_postgres_two_instances_and_nginx_with_health_checks():
    services = compose()["services"]
    assert set(services) == {"db", "migrate", "bot1", "bot2", "nginx"}
    assert "pg_isready" in " ".join(services["db"]["healthcheck"]["test"])
    assert services["migrate"]["command"] == ["branchbot", "init"]
    assert services["migrate"]["depends_on"]["db"]["condition"] == "service_healthy"
    for name in ("bot1", "bot2"):
        bot = services[name]
        assert bot["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
        assert "/healthz" in " ".join(bot["healthcheck"]["test"])
        assert bot["environment"]["BRANCHBOT__DATABASE__URL"].startswith("postgresql+psycopg://")
        assert bot["environment"]["BRANCHBOT__SIMULATOR__ENABLED"] == "false"
        assert bot["env_file"] == ["branchbot.env"] and bot["read_only"] is True
    assert {d: c["condition"] for d, c in services["nginx"]["depends_on"].items()} == {
        "bot1": "service_healthy",
        "bot2": "service_healthy",
    }
    mounts = " ".join(services["nginx"]["volumes"])
    assert "upstream-compose.conf" in mounts and "branchbot.conf" in mounts


def _values(node, path=""):
    if isinstance(node, dict):
        for key, value in node.items():
            yield from _values(value, f"{path}.{key}")
    elif isinstance(node, list):
        for item in node:
            yield from _values(item, path)
    else:
        yield path, str(node)


def test_compose_and_env_example_hold_no_secrets():
    for path, value in _values(compose()):
        name = path.rsplit(".", 1)[-1]
        if SECRETISH.search(name):
            assert re.fullmatch(r"\$\{[A-Z_]+(:\?[^}]*)?\}", value), (
                f"{path} must come from the env file, not {value!r}"
            )
        if "://" in value and "@" in value:  # a URL with credentials: the password is interpolated
            assert "${POSTGRES_PASSWORD" in value, path
    assert "deploy/branchbot.env" in (ROOT / ".gitignore").read_text(encoding="utf-8")
    for line in (DEPLOY / "branchbot.env.example").read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.startswith("#"):
            key, _, value = line.partition("=")
            if SECRETISH.search(key):
                assert value.startswith("change-me"), f"{key} in the example must be a placeholder"


def test_dockerfile_is_slim_non_root_and_checks_health():
    text = (DEPLOY / "Dockerfile").read_text(encoding="utf-8")
    final = text.split("\nFROM ")[-1]
    assert final.startswith("python:3.12-slim")
    assert re.search(r"^USER branchbot$", final, re.M) and "useradd --system" in final
    assert "HEALTHCHECK" in final and "/healthz" in final
    assert re.search(r'^CMD \["branchbot", "serve"\]$', final, re.M)
    assert not re.search(r"SECRET|PASSWORD|APP_SECRET", final)


@pytest.mark.skipif(not shutil.which("systemd-analyze"), reason="systemd-analyze not installed")
def test_systemd_unit_verifies(tmp_path):
    unit = (DEPLOY / "systemd" / "branchbot@.service").read_text(encoding="utf-8")
    for option in (
        "NoNewPrivileges=yes",
        "ProtectSystem=strict",
        "ProtectHome=yes",
        "PrivateTmp=yes",
        "CapabilityBoundingSet=",
        "SystemCallFilter=@system-service",
        "User=branchbot",
        "EnvironmentFile=/etc/branchbot/branchbot.env",
    ):
        assert option in unit.splitlines(), option
    # The ExecStart binary must exist for verify: point it at this environment's branchbot.
    installed = Path(sys.executable).parent / "branchbot"
    (tmp_path / "branchbot@.service").write_text(
        unit.replace("/opt/branchbot/bin/branchbot", str(installed)), encoding="utf-8"
    )
    result = subprocess.run(
        ["systemd-analyze", "verify", str(tmp_path / "branchbot@8000.service")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    problems = [
        line
        for line in (result.stdout + result.stderr).splitlines()
        if "branchbot@" in line and "Documentation" not in line
    ]
    assert result.returncode == 0 and not problems, result.stdout + result.stderr
    # systemd's own exposure score for the sandbox (0 = locked down, 10 = none): at most 2.0.
    security = subprocess.run(
        ["systemd-analyze", "security", "--offline=true", "--threshold=20", str(tmp_path / "branchbot@8000.service")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    if "offline" not in security.stderr:  # systemd < 252 cannot score a unit file offline
        assert security.returncode == 0, security.stdout[-2000:]


def _self_signed(directory: Path) -> None:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "bot.example.org")])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    (directory / "fullchain.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (directory / "privkey.pem").write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )


def test_nginx_site_routes_only_the_callbacks_and_the_console():
    site = (DEPLOY / "nginx" / "branchbot.conf").read_text(encoding="utf-8")
    blocks = dict(re.findall(r"location (= /wechat|= /wecom|/console/|/) \{(.*?)\}", site, re.S))
    for route in ("= /wechat", "= /wecom", "/console/"):
        assert "proxy_pass http://branchbot;" in blocks[route]
        assert "client_max_body_size" in blocks[route] and "proxy_read_timeout" in blocks[route]
    assert "return 404;" in blocks["/"]  # the simulator and /metrics are never public
    assert "ssl_certificate " in site and "TLSv1.2 TLSv1.3" in site


@pytest.mark.skipif(not shutil.which("nginx"), reason="nginx not installed")
@pytest.mark.parametrize("upstream", ["upstream.conf", "upstream-compose.conf"])
def test_nginx_accepts_the_site(tmp_path, upstream):
    tls = tmp_path / "tls"
    tls.mkdir()
    _self_signed(tls)
    site = (DEPLOY / "nginx" / "branchbot.conf").read_text(encoding="utf-8").replace("/etc/nginx/tls/", f"{tls}/")
    (tmp_path / "site.conf").write_text(site, encoding="utf-8")
    upstream_text = (DEPLOY / "nginx" / upstream).read_text(encoding="utf-8")
    # compose's service names only resolve inside compose: check the syntax with loopback.
    (tmp_path / "upstream.conf").write_text(
        re.sub(r"server bot\d:", "server 127.0.0.1:", upstream_text), encoding="utf-8"
    )
    (tmp_path / "nginx.conf").write_text(
        f"pid {tmp_path}/nginx.pid;\nerror_log {tmp_path}/error.log;\nevents {{}}\n"
        f"http {{\n  access_log off;\n  include {tmp_path}/upstream.conf;\n  include {tmp_path}/site.conf;\n}}\n",
        encoding="utf-8",
    )
    result = subprocess.run(
        ["nginx", "-t", "-c", str(tmp_path / "nginx.conf")], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0 and "test is successful" in result.stderr, result.stderr


def test_systemd_config_example_loads_with_secrets_from_the_environment():
    from bot.config import load_config
    from tests.conftest import random_aes_key

    config = load_config(
        DEPLOY / "config.toml.example",
        {
            "BRANCHBOT__WECHAT__ENCODING_AES_KEY": random_aes_key(),
            "BRANCHBOT__WECHAT__TOKEN": "t0ken",
            "BRANCHBOT__WECHAT__APP_ID": "wx1234567890abcdef",
        },
    )
    assert config.simulator.enabled is False and config.wechat.mode == "safe"
    assert config.database.url == "sqlite:////var/lib/branchbot/branchbot.db"  # the unit's only writable path


@pytest.mark.skipif(not shutil.which("nginx"), reason="nginx not installed")
def test_nginx_site_serves_the_callbacks_over_tls_and_hides_the_rest(tmp_path):
    """The real site file in front of a real `branchbot serve` (ports moved off 80/443)."""
    import os
    import time

    import httpx

    from tests.conftest import TOKEN, sha1_sorted, wait_healthy
    from tests.support.net import free_port

    bot_port, http_port, https_port = free_port(), free_port(), free_port()
    cfg = tmp_path / "config.toml"
    cfg.write_text(
        f'[server]\nport = {bot_port}\n[database]\nurl = "sqlite:///{tmp_path / "bot.db"}"\n'
        f'[wechat]\ntoken = "{TOKEN}"\n[simulator]\nenabled = true\n',
        encoding="utf-8",
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("BRANCHBOT__")} | {"PYTHONPATH": str(ROOT)}
    subprocess.run(
        [sys.executable, "-m", "bot.cli", "init", "--config", str(cfg)],
        env=env,
        check=True,
        capture_output=True,
        timeout=120,
    )
    tls = tmp_path / "tls"
    tls.mkdir()
    _self_signed(tls)
    site = (DEPLOY / "nginx" / "branchbot.conf").read_text(encoding="utf-8").replace("/etc/nginx/tls/", f"{tls}/")
    site = re.sub(r"^\s*listen \[::\]:.*$", "", site, flags=re.M)
    site = site.replace("listen 80;", f"listen 127.0.0.1:{http_port};").replace(
        "listen 443 ", f"listen 127.0.0.1:{https_port} "
    )
    (tmp_path / "site.conf").write_text(site, encoding="utf-8")
    (tmp_path / "nginx.conf").write_text(
        f"daemon off;\npid {tmp_path}/nginx.pid;\nerror_log {tmp_path}/error.log;\nevents {{}}\n"
        f"http {{\n  access_log off;\n  client_body_temp_path {tmp_path}/body;\n  proxy_temp_path {tmp_path}/proxy;\n"
        f"  upstream branchbot {{ server 127.0.0.1:{bot_port}; }}\n  include {tmp_path}/site.conf;\n}}\n",
        encoding="utf-8",
    )
    log = tmp_path / "serve.log"
    with log.open("w") as out:
        server = subprocess.Popen(
            [sys.executable, "-m", "bot.cli", "serve", "--config", str(cfg)],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    nginx = subprocess.Popen(["nginx", "-c", str(tmp_path / "nginx.conf")], stderr=subprocess.PIPE, text=True)
    try:
        wait_healthy(bot_port, server, log=log)
        assert httpx.get(f"http://127.0.0.1:{bot_port}/").status_code == 200  # the simulator, on loopback only
        https = httpx.Client(base_url=f"https://127.0.0.1:{https_port}", verify=False, timeout=60)
        deadline = time.time() + 120  # nginx starts beside us: a bound on a hung start, not a speed check
        while True:
            try:
                https.get("/healthz")
                break
            except httpx.ConnectError:
                assert nginx.poll() is None and time.time() < deadline, "nginx did not start"
                time.sleep(0.1)
        ts, nonce = str(int(time.time())), "77"
        query = {"signature": sha1_sorted(TOKEN, ts, nonce), "timestamp": ts, "nonce": nonce, "echostr": "hello-wechat"}
        answer = https.get("/wechat", params=query)
        assert (answer.status_code, answer.text) == (200, "hello-wechat")
        assert https.get("/healthz").status_code == 200  # from loopback
        console = https.get("/console/welcome")
        assert console.status_code == 200 and "管理后台" in console.text
        assert https.get("/console/static/htmx.min.js").status_code == 200
        for private in ("/", "/metrics", "/simulator/api/members"):
            assert https.get(private).status_code == 404, private
        assert https.post("/wechat", params=query, content=b"x" * 70_000).status_code == 413  # client_max_body_size
        plain = httpx.get(f"http://127.0.0.1:{http_port}/wechat", params=query)
        assert plain.status_code == 301 and plain.headers["location"].startswith("https://")
    finally:
        nginx.terminate()
        server.terminate()
        nginx.wait(timeout=15)
        server.wait(timeout=15)
