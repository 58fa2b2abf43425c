"""Settings, read from ``FIRSTLINE_*`` environment variables (and nothing else).

Fail closed (issue 7, item 21):

* ``FIRSTLINE_ENVIRONMENT`` is ``prod`` unless set to ``dev`` or ``test``. Only ``dev``
  and ``test`` ever create an audit key; in ``prod`` a missing key is a startup error
  naming ``FIRSTLINE_AUDIT_KEY`` / ``FIRSTLINE_AUDIT_KEY_FILE``.
* No default depends on where the code is installed. Data (database, audit key,
  checkpoints, log) lives in ``FIRSTLINE_DATA_DIR``, else ``./var`` of the working
  directory; runbooks default to ``./runbooks`` and the inventory to
  ``./inventory.yaml`` of the working directory. Relative settings are made absolute
  against the working directory when the settings are read.
* Files Firstline creates in its data directory (database, audit key, checkpoints,
  log) are readable by their owner only (0600, directories 0700) whatever the umask:
  see ``private_file`` / ``private_dir``.

The audit checkpoint key lives outside the database: in ``FIRSTLINE_AUDIT_KEY`` or the
file named by ``FIRSTLINE_AUDIT_KEY_FILE`` (default ``<data dir>/audit.key``).
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import re
import secrets
import stat
import typing
import zoneinfo
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from runner.errors import ConfigError
from runner.redaction import safe_validation_errors

PRIVATE_FILE = 0o600
PRIVATE_DIR = 0o700
LANGS = {"en": "English", "nl": "Dutch"}  # FIRSTLINE_LANG


def private_dir(path: Path) -> Path:
    """Create *path* (and missing parents) as 0700 directories; existing ones are left as they are."""
    missing = []
    p = path
    while not p.exists():
        missing.append(p)
        if p.parent == p:
            break
        p = p.parent
    for d in reversed(missing):
        with contextlib.suppress(FileExistsError):
            d.mkdir(mode=PRIVATE_DIR)  # the umask can only take bits away from 0700
    return path


def private_file(path: Path) -> Path:
    """Make sure *path* exists and is readable and writable by its owner only (0600).

    A missing file is created 0600 (its directory 0700) whatever the umask; an existing
    file owned by this user is narrowed to 0600.
    """
    private_dir(path.parent)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, PRIVATE_FILE)
    try:
        st = os.fstat(fd)
        if stat.S_IMODE(st.st_mode) != PRIVATE_FILE and st.st_uid == os.getuid():
            os.fchmod(fd, PRIVATE_FILE)
    finally:
        os.close(fd)
    return path


def _cwd_path(value: Path) -> Path:
    return value if value.is_absolute() else Path.cwd() / value


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="FIRSTLINE_", extra="ignore")

    environment: Literal["dev", "test", "prod"] = "prod"
    # the CLI's language of progress and outcome (`--lang` wins; unset: LANG if it is Dutch, else en)
    lang: Literal["en", "nl"] | None = None
    data_dir: Path = Path("var")
    database_url: str = Field(default="sqlite:///var/firstline.db", repr=False)  # may hold a password
    runbooks_dir: Path = Path("runbooks")
    inventory: Path = Path("inventory.yaml")
    audit_key: SecretStr | None = None
    audit_key_file: Path = Path("var/audit.key")
    log_file: Path | None = Path("var/log/firstline.log")
    checkpoint_every: int = Field(default=100, ge=1, le=1_000_000)  # audit events per signed checkpoint
    escalation_group: str = "service-desk-l2"
    # seconds; a finite positive number (nan, inf, 0 or -5 ran steps that could never finish)
    default_step_timeout: float = Field(default=30.0, gt=0, le=86_400, allow_inf_nan=False)
    watchdog_grace: float = Field(default=5.0, ge=0, le=3600, allow_inf_nan=False)
    # --- runs (runner/runs.py, runner/dispatch.py; docs/architecture.md "The run seam") ---
    run_workers: int = Field(default=4, ge=1, le=64)  # in-process pool: runs at once
    run_queue_size: int = Field(default=32, ge=0, le=10_000)  # in-process pool: runs waiting; more are refused
    # seconds a queued run may wait (sweep: never_started)
    run_start_within: float = Field(default=600.0, gt=0, le=7 * 86_400, allow_inf_nan=False)
    # seconds between the portal's sweeps
    sweep_interval: float = Field(default=60.0, gt=0, le=86_400, allow_inf_nan=False)
    # --- leases and per-target serialisation (runner/leases.py, runner/target_locks.py) ---
    run_lease_seconds: float = Field(default=30.0, ge=1, le=3600)  # a claimed run's lease; renewed every third of it
    run_max_attempts: int = Field(default=2, ge=1, le=10)  # claims of one ticket before a lost run is escalated
    target_wait_seconds: float = Field(default=60.0, ge=0, le=3600)  # wait for another run on the same target
    # --- scale-out (runner/celery_app.py, runner/sealed.py; docs/deployment.md) ---
    # Celery broker (redis://, rediss://, amqp://, amqps://); unset: the embedded in-process pool.
    broker_url: str | None = Field(default=None, repr=False)  # may hold a password
    # Fernet key(s) sealing secret values across processes (comma-separated; the first encrypts).
    run_key: SecretStr | None = None
    run_key_file: Path = Path("var/run.key")  # default <data dir>/run.key
    worker_concurrency: int = Field(default=4, ge=1, le=64)  # runs at once per `firstline worker`
    batch_runbooks: list[str] = Field(default_factory=list)  # runbooks whose runs always go to the batch queue
    # --- database connection pool (PostgreSQL; SQLite ignores them): runner/ledger/store.make_engine ---
    database_pool_size: int = Field(default=5, ge=1, le=1000)  # connections kept open per process
    database_max_overflow: int = Field(default=10, ge=0, le=1000)  # more under load, closed when returned
    # seconds to wait for a free connection
    database_pool_timeout: float = Field(default=30.0, gt=0, le=3600, allow_inf_nan=False)
    database_pool_recycle: int = Field(default=1800, ge=-1)  # seconds before a connection is replaced; -1: never
    database_pool_pre_ping: bool = True  # test each connection on checkout (survives a server restart)
    # --- portal (docs/portal.md "Settings") ---
    public_base_url: str = Field(default="http://127.0.0.1:8000", pattern=r"^https?://[^\s/?#]+(/[^\s?#]*)?$")
    trusted_proxies: list[str] = Field(default_factory=list)  # addresses / CIDRs whose X-Forwarded-For counts
    # /metrics: with a token, only `Authorization: Bearer <token>`; without one, loopback clients only
    metrics_token: SecretStr | None = Field(default=None, min_length=16, max_length=256)
    session_idle_minutes: int = Field(default=30, ge=1, le=24 * 60)
    # the clock of the people's pages (an IANA name, e.g. Europe/Amsterdam): employees and agents
    # read times in it; the auditor's pages and exports keep UTC with offsets (docs/portal.md)
    time_zone: str = Field(default="UTC", min_length=1, max_length=64)
    session_max_hours: int = Field(default=12, ge=1, le=24 * 30)
    # An API token's lifetime (days); its roles are read again every role_recheck_seconds
    # (runner.auth.AuthService.recheck) and it is revoked at once when its account's password
    # changes through Firstline (runner.auth.end_sessions_of).
    api_token_days: int = Field(default=90, ge=1, le=3650)
    session_cookie_secure: bool | None = None  # None: Secure everywhere except environment=dev
    # How long (seconds) a session's or token's roles are believed before the directory is
    # asked again (runner.auth "Roles are read again"): someone removed from the agents group,
    # disabled or deleted loses that within this time, not when the session or token ends.
    role_recheck_seconds: int = Field(default=300, ge=1, le=24 * 3600)
    agent_groups: dict[str, list[str]] = Field(default_factory=dict)  # directory key -> group DNs
    auditor_groups: dict[str, list[str]] = Field(default_factory=dict)
    # sign-in directory key -> directory keys its agents may act on (runner/agent.py); default: their own
    agent_scopes: dict[str, list[str]] = Field(default_factory=dict)
    max_body_bytes: int = Field(default=65536, ge=1024, le=16 * 1024 * 1024)
    signin_max_per_account: int = Field(default=5, ge=1)
    signin_max_per_address: int = Field(default=20, ge=1)
    signin_window_seconds: int = Field(default=900, ge=1)
    signin_min_seconds: float = Field(default=0.4, ge=0, le=10)
    # Wrong current passwords a password change may meet per account within the window before
    # Firstline refuses further changes of it (runner.runs.RunService.current_password_tries):
    # counted in the ledger, so unlocking the account (which clears the directory's own count)
    # does not give a session more guesses.
    current_password_tries: int = Field(default=5, ge=1, le=100)
    current_password_window_seconds: int = Field(default=24 * 3600, ge=60, le=30 * 24 * 3600)
    # --- self-service reset / unlock (runner/selfservice.py; security.md items 1-17, 33) ---
    reset_code_minutes: int = Field(default=10, ge=1, le=10)  # codes live at most 10 minutes
    reset_max_tries: int = Field(default=5, ge=1, le=5)  # wrong codes before the code is burned
    reset_per_account_hour: int = Field(default=3, ge=1, le=3)
    reset_per_account_day: int = Field(default=5, ge=1, le=5)
    reset_per_address_hour: int = Field(default=20, ge=1)
    reset_global_day: int = Field(default=1000, ge=1)  # mails per day, all accounts together
    # proof of work (runner/pow.py, security.md item 5): after this many requests from one address
    # within an hour the next request needs a solved puzzle of reset_pow_bits leading zero bits
    reset_pow_after: int = Field(default=5, ge=0)  # 0: always
    reset_pow_bits: int = Field(default=16, ge=1, le=28)

    @field_validator("time_zone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        """An IANA time zone name the time zone database knows (``zoneinfo``; the ``tzdata``
        package when the system has none): ``Europe/Amsterdam``, ``UTC``."""
        try:
            zoneinfo.ZoneInfo(value)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            raise ValueError("not a time zone name") from None
        return value

    @field_validator("lang", mode="before")
    @classmethod
    def _lang_code(cls, value: Any) -> Any:
        """``nl``, ``NL``, ``nl_NL.UTF-8`` → ``nl``; empty → unset. Anything else stays as it
        is and is refused by the type (the supported languages are ``LANGS``)."""
        if isinstance(value, str):
            code = re.split(r"[_.@-]", value.strip().lower(), maxsplit=1)[0]
            return code if code in LANGS else (None if not code else value)
        return value

    @model_validator(mode="before")
    @classmethod
    def _data_dir_defaults(cls, data: Any) -> Any:
        """Database, key and log default to places inside the data directory."""
        if not isinstance(data, dict):
            return data
        data = dict(data)
        for name in ("data_dir", "inventory", "runbooks_dir"):
            if name in data and not str(data[name]).strip():
                # set but empty (FIRSTLINE_DATA_DIR=): a typo or a lost value, never "the default"
                # (the data dir was ./var of whatever folder the command ran in)
                raise ValueError(f"FIRSTLINE_{name.upper()} is set but empty; give a path, or unset it for the default")
        data_dir = _cwd_path(Path(str(data.get("data_dir") or "var")))
        data["data_dir"] = data_dir
        if not data.get("database_url"):
            data["database_url"] = f"sqlite:///{data_dir / 'firstline.db'}"
        if not data.get("audit_key_file"):
            data["audit_key_file"] = data_dir / "audit.key"
        if not data.get("run_key_file"):
            data["run_key_file"] = data_dir / "run.key"
        if not data.get("broker_url"):
            data["broker_url"] = None  # FIRSTLINE_BROKER_URL="" means no broker
        if "log_file" not in data:
            data["log_file"] = data_dir / "log" / "firstline.log"
        elif data["log_file"] in ("", "-"):
            data["log_file"] = None  # FIRSTLINE_LOG_FILE="" turns the log file off
        return data

    @model_validator(mode="after")
    def _absolute_paths(self) -> Settings:
        self.runbooks_dir = _cwd_path(self.runbooks_dir)
        self.inventory = _cwd_path(self.inventory)
        self.audit_key_file = _cwd_path(self.audit_key_file)
        self.run_key_file = _cwd_path(self.run_key_file)
        if self.log_file is not None:
            self.log_file = _cwd_path(self.log_file)
        if self.database_url.startswith("sqlite:///") and not self.database_url.startswith("sqlite:////"):
            rel = self.database_url.removeprefix("sqlite:///")
            if rel and rel != ":memory:":
                self.database_url = f"sqlite:///{_cwd_path(Path(rel))}"
        return self

    @property
    def sqlite_path(self) -> Path | None:
        """The database file when the database is an SQLite file, else None."""
        if self.database_url.startswith("sqlite:///"):
            rel = self.database_url.removeprefix("sqlite:///")
            return Path(rel) if rel and rel != ":memory:" else None
        return None

    def audit_secret(self) -> bytes:
        """The HMAC key for audit checkpoints; never stored in the database.

        Raises ``ConfigError`` when the key is missing in ``prod`` (naming both settings),
        shorter than 32 characters, or in a file that other users may read.
        """
        if self.audit_key is not None:
            key = self.audit_key.get_secret_value()
            if len(key) < 32:
                raise ConfigError("FIRSTLINE_AUDIT_KEY must be at least 32 characters")
            return key.encode()
        path = self.audit_key_file
        if not path.exists():
            if self.environment not in ("dev", "test"):
                raise ConfigError(
                    f"no audit key: set FIRSTLINE_AUDIT_KEY (32+ random characters) or create the file "
                    f"FIRSTLINE_AUDIT_KEY_FILE={path} (mode 600). Firstline creates a key itself only when "
                    "FIRSTLINE_ENVIRONMENT=dev or test."
                )
            private_dir(path.parent)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_FILE)
            with os.fdopen(fd, "w") as fh:
                fh.write(secrets.token_hex(32))
        try:
            mode = stat.S_IMODE(path.stat().st_mode)
            key = path.read_text(encoding="utf-8").strip()
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"audit key file {path} (FIRSTLINE_AUDIT_KEY_FILE) cannot be read") from exc
        if mode & 0o007:
            raise ConfigError(f"audit key file {path} may be read by other users (mode {mode:o}); chmod 600 it")
        if len(key) < 32:
            raise ConfigError(f"audit key file {path} holds fewer than 32 characters")
        return key.encode()

    def run_keys(self) -> list[bytes] | None:
        """The Fernet keys that seal secret values crossing processes (``runner.sealed``),
        first one encrypting; never stored in the database.

        From ``FIRSTLINE_RUN_KEY`` (one key, or several separated by commas for rotation),
        else the file ``FIRSTLINE_RUN_KEY_FILE`` (default ``<data dir>/run.key``, one key a
        line). ``dev`` / ``test`` create that file (0600) when it is missing; in ``prod`` a
        missing key returns None (secret parameters then cannot cross to a worker).
        ``ConfigError`` for a value that is not a Fernet key (never quoting it) or a file
        other users may read.
        """
        if self.run_key is not None:
            raw = self.run_key.get_secret_value().replace(",", "\n")
            where = "FIRSTLINE_RUN_KEY"
        else:
            path = self.run_key_file
            if not path.exists():
                if self.environment not in ("dev", "test"):
                    return None
                from cryptography.fernet import Fernet

                private_dir(path.parent)
                try:
                    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_FILE)
                except FileExistsError:
                    pass  # another process created it meanwhile: read theirs
                else:
                    with os.fdopen(fd, "w") as fh:
                        fh.write(Fernet.generate_key().decode("ascii") + "\n")
            try:
                mode = stat.S_IMODE(path.stat().st_mode)
                raw = path.read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError) as exc:
                raise ConfigError(f"run key file {path} (FIRSTLINE_RUN_KEY_FILE) cannot be read") from exc
            if mode & 0o077:
                raise ConfigError(f"run key file {path} may be read by other users (mode {mode:o}); chmod 600 it")
            where = f"run key file {path} (FIRSTLINE_RUN_KEY_FILE)"
        keys = [k.strip().encode("ascii", "replace") for k in raw.splitlines() if k.strip()]
        if not keys:
            raise ConfigError(f"{where} holds no key; generate one with `firstline worker --new-run-key`")
        for number, key in enumerate(keys, 1):
            if not _is_fernet_key(key):
                raise ConfigError(
                    f"{where}: key {number} is not a Fernet key (44 characters of URL-safe base64); "
                    "generate one with `firstline worker --new-run-key`"
                )
        return keys


def _is_fernet_key(key: bytes) -> bool:
    import base64
    import binascii

    try:
        return len(key) == 44 and len(base64.urlsafe_b64decode(key)) == 32
    except (binascii.Error, ValueError):
        return False


# What a setting takes, with a short example, for the messages of ``read_settings``. The
# JSON-valued settings are listed by hand (their shape is not obvious from the type); the
# others are described from their type (``_expected``).
EXPECTED: dict[str, str] = {
    "agent_groups": 'a JSON object: directory key -> group DNs, e.g. {"corp": ["cn=agents,dc=example,dc=org"]}',
    "auditor_groups": 'a JSON object: directory key -> group DNs, e.g. {"corp": ["cn=audit,dc=example,dc=org"]}',
    "agent_scopes": 'a JSON object: sign-in directory key -> list of directory keys, e.g. {"corp": ["corp", "lab"]}',
    "trusted_proxies": 'a JSON list of addresses or networks, e.g. ["127.0.0.1", "10.0.0.0/8"]',
    "batch_runbooks": 'a JSON list of runbook names, e.g. ["disk-cleanup"]',
    "lang": "one of " + ", ".join(f"{code} ({name})" for code, name in LANGS.items()),
    "database_url": "a database URL, e.g. sqlite:////var/lib/firstline/firstline.db or postgresql+psycopg2://firstline@db/firstline",
    "public_base_url": "an http(s) URL without query, e.g. https://firstline.example.org",
    "time_zone": "an IANA time zone name, e.g. Europe/Amsterdam or UTC",
}


def variable(field: str) -> str:
    """The environment variable of a settings field: ``agent_groups`` → ``FIRSTLINE_AGENT_GROUPS``."""
    return f"FIRSTLINE_{field.upper()}"


def _expected(field: str) -> str:
    """What *field* takes, with an example (``EXPECTED``, else from its type and default)."""
    if field in EXPECTED:
        return EXPECTED[field]
    info = Settings.model_fields.get(field)
    if info is None:
        return "see docs/deployment.md"
    annotation = info.annotation
    union = typing.get_origin(annotation) in (typing.Union, type(int | None))
    kinds = {a for a in typing.get_args(annotation) if a is not type(None)} if union else {annotation}
    default = info.default if info.default not in (None, ...) else None
    example = f", e.g. {str(default).lower() if isinstance(default, bool) else default}" if default is not None else ""
    for kind in kinds:
        if typing.get_origin(kind) is Literal:
            return "one of " + ", ".join(str(c) for c in typing.get_args(kind))
    if SecretStr in kinds:
        return "a secret (see docs/deployment.md; the value is never shown)"
    if bool in kinds:
        return "true or false"
    if int in kinds:
        return "a whole number" + example
    if float in kinds:
        return "a number (seconds or a count)" + example
    if Path in kinds:
        return "a file or directory path" + example
    return "text" + example


def _explain(field: str, problem: str) -> str:
    return f"{variable(field)}: {problem}; expected {_expected(field)}"


def read_settings() -> Settings:
    """Settings from the environment. A wrong value is a ``ConfigError`` that names the
    variable (``FIRSTLINE_AGENT_GROUPS``), says what is wrong and what it takes, with a
    short example, and never repeats the value (it may be a secret)."""
    from pydantic_settings import SettingsError

    try:
        return Settings()
    except ValidationError as exc:
        parts = []
        for loc, msg, kind in safe_validation_errors(exc):
            field = str(loc[0]) if loc else ""
            if not field:  # a whole-settings rule (``_data_dir_defaults``): its own sentence
                msg = msg.removeprefix("Value error, ")
            where = ".".join(str(p) for p in loc[1:])
            problem = f"{where}: {msg}" if where else msg
            if kind == "literal_error" or field == "lang":
                problem = "not a supported value" if field != "lang" else "not a supported language"
            parts.append(_explain(field, problem) if field else problem)
        raise ConfigError("settings: " + "; ".join(parts)) from None
    except SettingsError as exc:  # a list/dict setting that is not valid JSON
        found = re.search(r'field "(\w+)"', str(exc))
        field = found.group(1) if found else ""
        cause = exc.__cause__ or exc.__context__
        # JSON's own message says where (line, column), never what the value is
        where = (
            f" ({cause.msg} at line {cause.lineno}, column {cause.colno})"
            if isinstance(cause, json.JSONDecodeError)
            else ""
        )
        if not field:
            raise ConfigError("settings: a FIRSTLINE_* variable is not valid JSON" + where) from None
        raise ConfigError("settings: " + _explain(field, "not valid JSON" + where)) from None


@functools.cache
def get_settings() -> Settings:
    return read_settings()
