"""Settings, read from ``FIRSTLINE_*`` environment variables (and nothing else).

The audit checkpoint key lives outside the database: in ``FIRSTLINE_AUDIT_KEY`` or the
file named by ``FIRSTLINE_AUDIT_KEY_FILE`` (created with a random key on first use in
``dev``).
"""

from __future__ import annotations

import functools
import os
import secrets
from pathlib import Path
from typing import Literal

from pydantic import SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from runner.errors import ConfigError

ROOT = Path(__file__).resolve().parent.parent


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="FIRSTLINE_", extra="ignore")

    environment: Literal["dev", "test", "prod"] = "dev"
    database_url: str = f"sqlite:///{ROOT / 'var' / 'firstline.db'}"
    runbooks_dir: Path = ROOT / "runbooks"
    inventory: Path = ROOT / "lab" / "inventory.yaml"
    audit_key: SecretStr | None = None
    audit_key_file: Path = ROOT / "var" / "audit.key"
    log_file: Path | None = ROOT / "var" / "log" / "firstline.log"
    checkpoint_every: int = 100
    escalation_group: str = "service-desk-l2"
    default_step_timeout: float = 30.0
    watchdog_grace: float = 5.0

    def audit_secret(self) -> bytes:
        """The HMAC key for audit checkpoints; never stored in the database."""
        if self.audit_key is not None:
            key = self.audit_key.get_secret_value()
            if len(key) < 32:
                raise ConfigError("FIRSTLINE_AUDIT_KEY must be at least 32 characters")
            return key.encode()
        path = self.audit_key_file
        if not path.exists():
            if self.environment == "prod":
                raise ConfigError(
                    f"audit key file {path} is missing; create it (32+ random bytes) or set FIRSTLINE_AUDIT_KEY"
                )
            path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as fh:
                fh.write(secrets.token_hex(32))
        key = path.read_text(encoding="utf-8").strip()
        if len(key) < 32:
            raise ConfigError(f"audit key file {path} holds fewer than 32 characters")
        return key.encode()


@functools.cache
def get_settings() -> Settings:
    return Settings()
