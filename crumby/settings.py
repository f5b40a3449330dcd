"""Crumby's configuration in one place: defaults, the settings file, the environment.

Precedence, lowest first: the defaults below, the Python-syntax file named by
``CRUMBY_SETTINGS``, then ``CRUMBY_<KEY>`` environment variables, then the
mapping given to ``create_app(config=...)``.
"""

from __future__ import annotations

import json
import os
import types
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

ENV_PREFIX = "CRUMBY_"
SETTINGS_ENV = "CRUMBY_SETTINGS"
MASK = "********"


class ConfigError(Exception):
    """A settings file or value that Crumby cannot use; the message is one line."""


@dataclass(frozen=True)
class Setting:
    """One documented configuration key."""

    key: str
    default: Any
    comment: str
    secret: bool = False


SETTINGS: tuple[Setting, ...] = (
    Setting(
        "DOMAIN",
        "localhost:5000",
        "host[:port] where Crumby is reachable (the dashboard's tracker snippet uses it)",
    ),
    Setting(
        "SQLALCHEMY_DATABASE_URI",
        "sqlite:///~/crumby.db",
        "any SQLAlchemy URL: sqlite:///path, mysql+pymysql://..., postgresql+psycopg://...",
    ),
    Setting(
        "GEOIP2_DATABASE_NAME",
        "~/GeoLite2-City.mmdb",
        "MaxMind-format city database (crumby geoip fetches one); missing means no geo data",
    ),
    Setting("SECRET_KEY", None, "signs sessions and CSRF tokens; logins need it", secret=True),
    Setting("SESSION_COOKIE_SECURE", False, "send the session cookie over HTTPS only"),
    Setting("PROXY_COUNT", 0, "trusted proxy hops in X-Forwarded-For; 0 ignores the header"),
    Setting("CROSSDOMAIN_ORIGIN", "*", "origin(s) allowed to read the JSON API: a str or a list"),
    Setting("SQLALCHEMY_TRACK_MODIFICATIONS", False, "Flask-SQLAlchemy's event system (unused)"),
    Setting("DEBUG", False, "Flask's debug mode; never on a public server"),
    Setting("SQLALCHEMY_ECHO", False, "log every SQL statement to stderr"),
    Setting(
        "QUERY_FOLDER",
        None,
        "extra folder with public/ and private/ .sql reports; same names override built-ins",
    ),
    Setting("REPORT_TIMEOUT_SECONDS", 10, "time limit of one report query; over it answers 504"),
    Setting("REPORT_CACHE_SECONDS", 60, "how long public report results are cached; 0: off"),
    Setting(
        "REPORT_CACHE_TYPE",
        "SimpleCache",
        "Flask-Caching backend for public results (its CACHE_* keys configure it)",
    ),
    Setting(
        "PERMANENT_SESSION_LIFETIME",
        14 * 24 * 3600,
        "seconds a login lasts without a visit (each visit renews it)",
    ),
    Setting(
        "LOGIN_LIMIT_PER_IP",
        "10 per minute; 50 per hour",
        "failed logins allowed per client IP ('' turns the limit off)",
    ),
    Setting(
        "LOGIN_LIMIT_PER_USERNAME",
        "5 per minute; 20 per hour",
        "failed logins allowed per username, from any IP ('' turns the limit off)",
    ),
    Setting(
        "LOGIN_LIMIT_STORAGE_URI",
        "memory://",
        "where login and hit-rate counters live: memory:// (per process) or redis://host:6379",
    ),
    # tracking
    Setting("HIT_MAX_BYTES", 8192, "largest /visit or /event body or query string; more gets 413"),
    Setting(
        "HIT_RATE_LIMIT",
        "20/second",
        "hits accepted per client address (see PROXY_COUNT), e.g. '600/minute'; None: no limit",
    ),
    Setting(
        "HIT_WAIT_SECONDS",
        4,
        "longest a hit waits for the database; then 503 with Retry-After, and it is never stored",
    ),
    Setting("ANONYMIZE_IP", True, "store IPs cut to /24 (IPv4) or /48 (IPv6), after geolocating"),
    Setting("RESPECT_DNT", False, "drop hits sent with DNT: 1 or Sec-GPC: 1 (answered as usual)"),
    Setting("RETENTION_DAYS", 0, "days crumby prune keeps visits and events; 0 keeps everything"),
    Setting(
        "VISITOR_SALT_DAYS",
        1,
        "days a daily salt of anonymous visitor ids is kept; 1: today's only (imports of older "
        "days' logs get fresh ids)",
    ),
    Setting("TRACKER_MAX_AGE", 3600, "seconds browsers may cache /cmb.js (Cache-Control max-age)"),
    Setting(
        "MAXMIND_LICENSE_KEY",
        None,
        "crumby geoip: MaxMind license key for GeoLite2 City (None: DB-IP City Lite)",
        secret=True,
    ),
    Setting("MAXMIND_ACCOUNT_ID", None, "crumby geoip: MaxMind account id (optional)"),
    Setting(
        "GEOIP_DBIP_URL",
        "https://download.db-ip.com/free/dbip-city-lite-{month}.mmdb.gz",
        "crumby geoip: DB-IP City Lite download URL; {month} becomes YYYY-MM",
    ),
    Setting(
        "GEOIP_MAXMIND_URL",
        "https://download.maxmind.com",
        "crumby geoip: MaxMind's download server",
    ),
)

DEFAULTS: dict[str, Any] = {s.key: s.default for s in SETTINGS}
#: keys whose value is a filesystem path (or holds one) and gets ``~`` expanded
PATH_KEYS = ("GEOIP2_DATABASE_NAME", "QUERY_FOLDER")
SECRET_KEYS = {s.key for s in SETTINGS if s.secret}


def load_file(path: str) -> dict[str, Any]:
    """Read a Python-syntax settings file; only UPPERCASE names count, as in Flask."""
    module = types.ModuleType("crumby_settings")
    module.__file__ = path
    try:
        with open(path, "rb") as fh:
            source = fh.read()
        exec(compile(source, path, "exec"), module.__dict__)  # noqa: S102 - it is a config file
    except OSError as exc:
        raise ConfigError(f"cannot read settings file {path}: {exc.strerror or exc}") from None
    except SyntaxError as exc:
        raise ConfigError(f"settings file {path} line {exc.lineno}: {exc.msg}") from None
    except Exception as exc:  # any error raised while running the file
        raise ConfigError(f"settings file {path}: {type(exc).__name__}: {exc}") from None
    return {k: v for k, v in vars(module).items() if k.isupper()}


def parse_env_value(key: str, raw: str) -> Any:
    """Turn an environment string into the type its default has."""
    default = DEFAULTS.get(key)
    text = raw.strip()
    if isinstance(default, bool):
        lowered = text.lower()
        if lowered in ("1", "true", "yes", "on"):
            return True
        if lowered in ("0", "false", "no", "off", ""):
            return False
        raise ConfigError(f"{ENV_PREFIX}{key}: expected true or false, got {raw!r}")
    if isinstance(default, int):
        try:
            return int(text)
        except ValueError:
            raise ConfigError(f"{ENV_PREFIX}{key}: expected a whole number, got {raw!r}") from None
    if key == "CROSSDOMAIN_ORIGIN":
        if text.startswith("["):
            try:
                value = json.loads(text)
            except ValueError:
                raise ConfigError(f"{ENV_PREFIX}{key}: not a JSON list: {raw!r}") from None
            return [str(v) for v in value]
        if "," in text:
            return [part.strip() for part in text.split(",") if part.strip()]
        return text
    if key in DEFAULTS:
        return raw
    # Keys Crumby does not know (Flask's own, say): JSON if it parses, else the string.
    try:
        return json.loads(text)
    except ValueError:
        return raw


def load_env(environ: Mapping[str, str]) -> dict[str, Any]:
    """Collect ``CRUMBY_<KEY>`` variables, except CRUMBY_SETTINGS and test-only ones."""
    values = {}
    for name, raw in environ.items():
        if not name.startswith(ENV_PREFIX) or name == SETTINGS_ENV:
            continue
        key = name[len(ENV_PREFIX) :]
        if not key or not key.isupper() or key.startswith("TEST_"):
            continue
        values[key] = parse_env_value(key, raw)
    return values


def expand_database_uri(uri: str) -> str:
    """Expand ``~`` in an SQLite path; other URLs pass unchanged."""
    if not isinstance(uri, str):
        raise ConfigError("SQLALCHEMY_DATABASE_URI must be a string")
    try:
        url = make_url(uri)
    except ArgumentError:
        raise ConfigError(f"SQLALCHEMY_DATABASE_URI is not a database URL: {uri!r}") from None
    if url.get_backend_name() == "sqlite" and url.database and url.database.startswith("~"):
        url = url.set(database=os.path.expanduser(url.database))
        return url.render_as_string(hide_password=False)
    return uri


def resolve(
    overrides: Mapping[str, Any] | None = None,
    environ: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """Merge defaults < settings file < environment < overrides, then normalise."""
    environ = os.environ if environ is None else environ
    values: dict[str, Any] = dict(DEFAULTS)
    settings_file = environ.get(SETTINGS_ENV)
    if settings_file:
        values.update(load_file(settings_file))
        values["CRUMBY_SETTINGS_FILE"] = os.path.abspath(settings_file)
    values.update(load_env(environ))
    if overrides:
        values.update(overrides)
    values["SQLALCHEMY_DATABASE_URI"] = expand_database_uri(values["SQLALCHEMY_DATABASE_URI"])
    for key in PATH_KEYS:
        if isinstance(values.get(key), str):
            values[key] = os.path.expanduser(values[key])
    if not isinstance(values.get("PROXY_COUNT"), int) or values["PROXY_COUNT"] < 0:
        raise ConfigError("PROXY_COUNT must be a whole number, 0 or more")
    return values


def mask(key: str, value: Any) -> Any:
    """Hide secrets: SECRET_KEY-like keys and passwords inside database URLs."""
    if value is None:
        return None
    if key in SECRET_KEYS or key.endswith(("_PASSWORD", "_SECRET", "_KEY")):
        return MASK
    if key.endswith("_URI") or key.endswith("_URL"):
        try:
            url = make_url(value)
        except (ArgumentError, TypeError, AttributeError):
            return value
        if url.password is not None:
            return url.render_as_string(hide_password=True)
    return value


def render_config_file(secret_key: str | None) -> str:
    """The commented settings file that ``crumby init`` writes (None: the example file)."""
    lines = [
        "# Crumby settings: Python syntax. Point CRUMBY_SETTINGS at this file.",
        "# Every key can also be set by an environment variable CRUMBY_<KEY>,",
        "# which wins over this file.",
        "",
    ]
    for setting in SETTINGS:
        value = secret_key if setting.key == "SECRET_KEY" else setting.default
        lines.append(f"# {setting.comment}")
        lines.append(f"{setting.key} = {value!r}")
        lines.append("")
    return "\n".join(lines)
