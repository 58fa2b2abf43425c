"""The ``winrm`` connector: print queues, the spooler, services and disk cleanup on Windows.

Security properties (security.md items 47, 49, 50):

* Values never enter script text: each action runs a fixed script (``winrm_scripts``) whose
  typed ``param(...)`` block receives the values as base64 JSON on stdin.
* HTTPS with certificate validation by default (``ca_trust`` from the inventory); plain
  HTTP with Basic auth is refused unless the target explicitly sets ``allow_insecure_http``
  (lab only). NTLM, Kerberos or Basic as the inventory says.
* Timeouts: a command still running at the deadline is signalled (terminate) and its shell
  deleted; the error says whether both were confirmed.
* PowerShell errors (CLIXML on stderr) become plain messages: ``ObjectNotFound`` →
  ``NotFound``, ``PermissionDenied`` → ``Rejected(access_denied)``, others ``Rejected``.

Inventory example::

    print-win-01:
      connector: winrm
      endpoint: https://127.0.0.1:15986/wsman
      transport: basic
      username: svc-firstline
      password: {file: ../var/lab/winrm/secrets/password}
      ca_trust: {file: ../var/lab/ca/ca.crt}
      allowed_services: [Spooler, W32Time]
      cleanup_paths: ['C:\\Temp\\Firstline']
"""

from __future__ import annotations

import contextlib
import html
import json
import logging
import os
import re
import ssl
import tempfile
import threading
import time
import weakref
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

import requests
from pydantic import Field, field_validator, model_validator
from winrm.exceptions import (
    InvalidCredentialsError,
    WinRMError,
    WinRMOperationTimeoutError,
    WinRMTransportError,
    WSManFaultError,
)
from winrm.protocol import Protocol

from connectors.base import (
    ActionSpec,
    AuthFailed,
    Connector,
    ConnectorError,
    Interrupted,
    NotFound,
    Rejected,
    SecretResolver,
    TargetConfig,
    Timeout,
    Unreachable,
)
from connectors.host_values import (
    DISK_CLEANUP,
    DISK_USAGE,
    PRINT_QUEUE_CLEAR,
    PRINT_QUEUE_LIST,
    SERVICE_RESTART,
    SERVICE_RESTART_OUTPUTS,
    SERVICE_STATUS,
    check_allowed,
    check_name,
    check_path_allowed,
    is_canonical_windows_dir,
    is_valid_name,
    resolver_problem,
)
from connectors.winrm_scripts import SCRIPTS, encode_command, encode_params

__all__ = ["WinrmConnector", "WinrmTargetConfig", "clixml_message", "tls_error"]

log = logging.getLogger("firstline.connectors.winrm")

SecretRef = dict[str, str]
_MAX_OUTPUT = 4 * 1_048_576


class WinrmTargetConfig(TargetConfig):
    """Per-target settings of a Windows host reached over WinRM."""

    endpoint: str = Field(pattern=r"^https?://[^\s/]+(:\d+)?/wsman$", max_length=300)
    transport: Literal["ntlm", "kerberos", "basic", "credssp"] = "ntlm"
    username: str = Field(min_length=1, max_length=256)
    password: SecretRef | None = None
    server_cert_validation: Literal["validate", "ignore"] = "validate"
    ca_trust: SecretRef | str | None = None
    """CA bundle (PEM) as a reference or a path relative to the inventory; default: system CAs."""
    allow_insecure_http: bool = False
    connect_timeout: float = Field(default=10.0, gt=0, le=120)
    allowed_queues: tuple[str, ...] | None = None
    allowed_services: tuple[str, ...] = ()
    restart_settle_seconds: float = Field(default=2.0, ge=0, le=60)
    """After a restart the service must still run this long later (checked at once and again)."""
    cleanup_paths: tuple[str, ...] = ()
    cleanup_older_than_days: int = Field(default=7, ge=0, le=3650)

    @field_validator("allowed_services", "allowed_queues")
    @classmethod
    def _names(cls, value: tuple[str, ...] | None) -> tuple[str, ...] | None:
        for name in value or ():
            if not is_valid_name(name):
                raise ValueError(f"'{name}' is not a valid service/queue name")
        return value

    @field_validator("cleanup_paths")
    @classmethod
    def _paths(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        bad = [str(i) for i, path in enumerate(value, 1) if not is_canonical_windows_dir(path)]  # as the SSH one
        if bad:
            raise ValueError(
                f"cleanup path{'s' if len(bad) > 1 else ''} number {', '.join(bad)} (counting from 1) must look "
                r"like C:\Dir\Sub (no '..', no trailing '\')"
            )
        return value

    @model_validator(mode="after")
    def _secure(self) -> WinrmTargetConfig:
        if self.endpoint.startswith("http://") and not self.allow_insecure_http:
            raise ValueError("endpoint uses plain HTTP: use https:// (or set allow_insecure_http for a lab)")
        if self.transport in ("basic", "ntlm", "credssp") and self.password is None:
            raise ValueError(f"transport {self.transport} needs a 'password' reference")
        return self


def clixml_message(stderr: str) -> tuple[str, str | None]:
    """Turn PowerShell CLIXML error output into (plain message, error category or None)."""
    text = stderr
    if text.startswith("#< CLIXML"):
        # Only the <S S="Error">...</S> strings matter; a regex avoids parsing remote XML.
        parts = re.findall(r'<S S="Error">(.*?)</S>', text, flags=re.S)
        text = html.unescape("".join(parts))
        text = re.sub(r"_x([0-9A-Fa-f]{4})_", lambda m: chr(int(m.group(1), 16)), text)
    lines = [ln.strip() for ln in text.replace("\r", "").split("\n") if ln.strip()]
    category = None
    for line in lines:
        m = re.match(r"\+\s*CategoryInfo\s*:\s*(\w+)", line)
        if m:
            category = m.group(1)
            break
    message = next(
        (ln for ln in lines if not ln.startswith("+") and not ln.startswith("At line:")),
        "PowerShell reported an error without a message",
    )
    return message[:500], category


# OpenSSL X509_V_ERR_* codes (x509_vfy.h), grouped by what the operator has to fix.
_UNTRUSTED = frozenset({2, 18, 19, 20, 21, 27, 28})  # unknown/self-signed issuer, untrusted, rejected
_EXPIRED = frozenset({9, 10})  # not yet valid, expired
_NAME_MISMATCH = frozenset({62, 64})  # host name / IP address mismatch


def _cert_error(exc: BaseException) -> ssl.SSLCertVerificationError | None:
    """The OpenSSL verification error somewhere in requests' / urllib3's wrapping, if any."""
    stack: list[BaseException] = [exc]
    seen: set[int] = set()
    while stack:
        err = stack.pop()
        if id(err) in seen:
            continue
        seen.add(id(err))
        if isinstance(err, ssl.SSLCertVerificationError):
            return err
        for nxt in (err.__cause__, err.__context__, getattr(err, "reason", None), *err.args):
            if isinstance(nxt, BaseException):
                stack.append(nxt)
    return None


def _holds_certificates(pem: str) -> bool:
    """Whether *pem* loads as at least one certificate into an OpenSSL trust store."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    try:
        context.load_verify_locations(cadata=pem)
    except (ssl.SSLError, ValueError):
        return False
    return context.cert_store_stats().get("x509", 0) > 0


def tls_error(exc: BaseException, where: str, target: str) -> AuthFailed:
    """A TLS failure as one plain message naming what to fix, with a distinct reason.

    ``certificate_untrusted`` (issuer not in ``ca_trust``), ``certificate_name_mismatch``
    (the certificate does not name the host in ``endpoint``), ``certificate_expired``
    (expired or not yet valid), else ``certificate_invalid``. No CA paths in the message.
    """
    cert = _cert_error(exc)
    code = cert.verify_code if cert is not None else None
    detail = (cert.verify_message if cert is not None else "") or ""
    if code in _UNTRUSTED:
        return AuthFailed(
            f"winrm: the TLS certificate of {where} was issued by a CA that is not trusted ({detail}); "
            f"set 'ca_trust' of target {target} to the CA that issued it",
            reason="certificate_untrusted",
        )
    if code in _NAME_MISMATCH or "match" in detail.lower():
        return AuthFailed(
            f"winrm: the TLS certificate of {where} does not name the host in 'endpoint' ({detail}); "
            f"use in 'endpoint' of target {target} a name the certificate carries",
            reason="certificate_name_mismatch",
        )
    if code in _EXPIRED:
        return AuthFailed(
            f"winrm: the TLS certificate of {where} is outside its validity period ({detail}); "
            "the server's certificate must be renewed ('ca_trust' is not the problem)",
            reason="certificate_expired",
        )
    return AuthFailed(
        f"winrm: the TLS handshake with {where} failed ({detail or 'certificate or protocol error'}); "
        f"check 'endpoint' and 'ca_trust' of target {target}",
        reason="certificate_invalid",
    )


@dataclass
class _Shell:
    protocol: Protocol
    shell_id: str


@dataclass
class _Command:
    shell: _Shell
    command_id: str
    cancelled: bool = False
    cleanup_confirmed: bool | None = None
    cleanup_done: threading.Event = field(default_factory=threading.Event)


class WinrmConnector(Connector):
    """Acts on a Windows host through WinRM (pywinrm), with pooled shells per target."""

    name = "winrm"
    config_model = WinrmTargetConfig
    actions: ClassVar[Mapping[str, ActionSpec]] = {
        "print_queue_list": PRINT_QUEUE_LIST,
        "print_queue_clear": PRINT_QUEUE_CLEAR,
        "spooler_restart": ActionSpec(
            "spooler_restart",
            outputs=SERVICE_RESTART_OUTPUTS,
            changes_state=True,
            description="Restart the print spooler (releases stuck jobs).",
        ),
        "service_status": SERVICE_STATUS,
        "service_restart": SERVICE_RESTART,
        "disk_usage": DISK_USAGE,
        "disk_cleanup": DISK_CLEANUP,
    }

    config: WinrmTargetConfig

    def __init__(self, target_name: str, config: TargetConfig, secrets: SecretResolver) -> None:
        if not isinstance(config, WinrmTargetConfig):
            raise TypeError("WinrmConnector needs a WinrmTargetConfig")
        super().__init__(target_name, config, secrets)
        self._idle: list[_Shell] = []
        self._running: dict[int, _Command] = {}
        self._lock = threading.Lock()
        self._ca_file: str | None = None
        self.shells_opened = 0  # tests check reuse

    # -- sessions ------------------------------------------------------------------------
    def _ca_path(self) -> str | None:
        """The CA bundle as a private temp file; a CA that cannot be used is a ``config_error``."""
        ref = self.config.ca_trust
        if ref is None or self.config.server_cert_validation == "ignore":
            return None
        if self._ca_file is None:
            setting = f"the CA file named by 'ca_trust' of target {self.target_name}"
            try:
                pem = self._secrets({"file": ref} if isinstance(ref, str) else ref)
            except Exception as exc:  # the resolver's errors (missing file, not UTF-8) are all config
                log.warning("winrm: %s cannot be read: %s", setting, exc)
                raise ConnectorError(
                    f"winrm: {setting} cannot be read ({resolver_problem(exc)}); fix 'ca_trust' in the inventory",
                    reason="config_error",
                ) from exc
            if not _holds_certificates(pem):
                raise ConnectorError(
                    f"winrm: {setting} holds no readable PEM CA certificate; fix 'ca_trust' in the inventory",
                    reason="config_error",
                )
            fd, path = tempfile.mkstemp(prefix="firstline-ca-", suffix=".pem")
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                fh.write(pem)
            self._ca_file = path
            weakref.finalize(self, _unlink, path)
        return self._ca_file

    def _new_shell(self) -> _Shell:
        cfg = self.config
        password = self._secrets(cfg.password) if cfg.password is not None else None
        kwargs: dict[str, Any] = {}
        ca = self._ca_path()
        if ca is not None:
            kwargs["ca_trust_path"] = ca
        try:
            protocol = Protocol(
                endpoint=cfg.endpoint,
                transport=cfg.transport,
                username=cfg.username,
                password=password,
                server_cert_validation=cfg.server_cert_validation,
                read_timeout_sec=30,
                operation_timeout_sec=20,
                **kwargs,
            )
        except WinRMError as exc:
            raise ConnectorError(f"winrm: cannot set up {cfg.transport} for {self.target_name}: {exc}") from exc
        with self._errors("opening a shell"):
            shell_id = protocol.open_shell(codepage=65001)
        self.shells_opened += 1
        return _Shell(protocol, shell_id)

    def _acquire(self) -> _Shell:
        with self._lock:
            if self._idle:
                return self._idle.pop()
        return self._new_shell()

    def _release(self, shell: _Shell) -> None:
        with self._lock:
            self._idle.append(shell)

    def _discard(self, shell: _Shell) -> bool:
        """Delete the remote shell; True when the server confirmed it."""
        try:
            shell.protocol.close_shell(shell.shell_id, close_session=True)
            return True
        except (WinRMError, requests.RequestException, AssertionError, OSError):
            return False

    def close(self) -> None:
        with self._lock:
            idle, self._idle = self._idle, []
        for shell in idle:
            self._discard(shell)
        if self._ca_file is not None:
            _unlink(self._ca_file)
            self._ca_file = None

    def cancel(self) -> bool:
        with self._lock:
            running = list(self._running.values())
        results = []
        for cmd in running:
            cmd.cancelled = True
            cmd.cleanup_confirmed = self._stop(cmd)
            cmd.cleanup_done.set()
            results.append(cmd.cleanup_confirmed)
        return all(results)

    def _stop(self, cmd: _Command) -> bool:
        """Signal terminate + delete the shell; True when both were confirmed."""
        signalled = False
        try:
            cmd.shell.protocol.cleanup_command(cmd.shell.shell_id, cmd.command_id)
            signalled = True
        except (WinRMError, requests.RequestException, AssertionError, OSError):
            signalled = False
        return self._discard(cmd.shell) and signalled

    @contextlib.contextmanager
    def _errors(self, doing: str) -> Any:
        where = f"{self.target_name} ({self.config.endpoint})"
        try:
            yield
        except InvalidCredentialsError as exc:
            raise AuthFailed(f"winrm: {where} refused the credentials of {self.config.username}") from exc
        except requests.exceptions.SSLError as exc:
            raise tls_error(exc, where, self.target_name) from exc
        except requests.exceptions.ReadTimeout as exc:
            raise Timeout(f"winrm: {where} did not answer in time while {doing}") from exc
        except (requests.exceptions.ConnectionError, requests.exceptions.ConnectTimeout) as exc:
            raise Unreachable(f"winrm: cannot reach {where}") from exc
        except WSManFaultError as exc:
            raise Rejected(f"winrm: {where} refused {doing}: {exc.reason}", reason="wsman_fault") from exc
        except WinRMTransportError as exc:
            raise Unreachable(f"winrm: HTTP error from {where} while {doing} (status {exc.code})") from exc
        except (WinRMError, requests.RequestException) as exc:
            raise Unreachable(f"winrm: {where} failed while {doing}: {type(exc).__name__}") from exc

    def check_connection(self, *, timeout: float) -> str:
        """Open an authenticated remote shell over the verified TLS connection and close it."""
        shell = self._new_shell()
        self._discard(shell)
        return f"TLS verified, signed in as {self.config.username} ({self.config.transport}), opened a shell"

    # -- running a fixed script --------------------------------------------------------
    def _run_script(self, action: str, params: dict[str, Any], timeout: float) -> dict[str, Any]:
        """Run the fixed script of *action* and return its JSON result.

        An error of the script itself (it ran and failed), or a result that cannot be read, is
        marked ``script_ran`` (see ``_changing_script``).
        """
        deadline = time.monotonic() + timeout
        script = SCRIPTS[action]
        argv = ["-NoLogo", "-NoProfile", "-NonInteractive", "-EncodedCommand", encode_command(script)]
        shell = self._acquire()
        try:
            with self._errors(f"starting {action}"):
                command_id = shell.protocol.run_command(shell.shell_id, "powershell.exe", argv, skip_cmd_shell=True)
        except Rejected:
            # e.g. the pooled shell expired on the server: start over once with a fresh one
            self._discard(shell)
            shell = self._new_shell()
            with self._errors(f"starting {action}"):
                command_id = shell.protocol.run_command(shell.shell_id, "powershell.exe", argv, skip_cmd_shell=True)
        except ConnectorError:
            self._discard(shell)
            raise
        cmd = _Command(shell, command_id)
        key = id(cmd)
        with self._lock:
            self._running[key] = cmd
        try:
            stdout, stderr, code = self._receive(cmd, action, params, deadline, timeout)
        finally:
            with self._lock:
                self._running.pop(key, None)
        if cmd.cancelled:
            raise self._cancelled(cmd, action)
        try:
            shell.protocol.cleanup_command(shell.shell_id, command_id)
            self._release(shell)
        except (WinRMError, requests.RequestException, AssertionError, OSError):
            self._discard(shell)
        if code != 0:
            raise _ran(self._script_error(action, stderr.decode("utf-8", "replace"), code))
        try:
            result = json.loads(stdout.decode("utf-8", "replace").strip() or "null")
        except ValueError as exc:
            raise _ran(Rejected(f"winrm: {action} on {self.target_name} returned unreadable output")) from exc
        if not isinstance(result, dict):
            raise _ran(Rejected(f"winrm: {action} on {self.target_name} returned no result"))
        return result

    def _changing_script(
        self, action: str, params: dict[str, Any], timeout: float, before_change: tuple[str, ...]
    ) -> dict[str, Any]:
        """``_run_script`` for a state-changing script.

        *before_change*: the reasons its errors can only have before any change (``not_found``,
        ``access_denied``, ...). Any other error of the script that ran (``script_ran``) may
        follow part of the change — a service stopped, some jobs or files removed — so it is
        ``outcome_unknown``, never "nothing was applied". Errors before the script ran (no
        connection, refused credentials) stay as they are.
        """
        try:
            return self._run_script(action, params, timeout)
        except ConnectorError as exc:
            if getattr(exc, "script_ran", False) and exc.reason not in before_change:
                exc.outcome_unknown = True
            raise

    def _receive(
        self, cmd: _Command, action: str, params: dict[str, Any], deadline: float, timeout: float
    ) -> tuple[bytes, bytes, int]:
        protocol, shell_id = cmd.shell.protocol, cmd.shell.shell_id
        out, err = bytearray(), bytearray()
        try:
            with self._errors(f"sending the parameters of {action}"):
                protocol.send_command_input(shell_id, cmd.command_id, encode_params(params), end=True)
            while True:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError
                # The server holds a Receive up to OperationTimeout, then faults; keep it
                # inside the step's deadline.
                protocol.operation_timeout_sec = max(1, min(20, int(left)))
                protocol.transport.read_timeout_sec = protocol.operation_timeout_sec + 10
                try:
                    with self._errors(f"waiting for {action}"):
                        so, se, code, done = protocol.get_command_output_raw(shell_id, cmd.command_id)
                except WinRMOperationTimeoutError:
                    continue
                if len(out) < _MAX_OUTPUT:
                    out.extend(so[: _MAX_OUTPUT - len(out)])
                if len(err) < _MAX_OUTPUT:
                    err.extend(se[: _MAX_OUTPUT - len(err)])
                if done:
                    return bytes(out), bytes(err), code
        except KeyboardInterrupt:
            # the operator stopped the run: the command must not outlive it (security.md 50)
            raise Interrupted.after_cleanup(
                f"winrm: {action} on {self.target_name}",
                self._stop(cmd),
                done="the command was terminated and its shell deleted",
                not_done="cleanup NOT confirmed",
            ) from None
        except TimeoutError:
            confirmed = self._stop(cmd)
            error = Timeout(
                f"winrm: {action} on {self.target_name} did not finish within {timeout:g} s; "
                + (
                    "the command was terminated and its shell deleted (cleanup confirmed)"
                    if confirmed
                    else "terminating the command and deleting its shell could NOT be confirmed"
                ),
                outcome_unknown=True,  # the command ran for a while: how far it got is not known
            )
            error.cleanup_confirmed = confirmed  # type: ignore[attr-defined]  # extra detail for the runner
            raise error from None
        except ConnectorError as exc:
            if cmd.cancelled:
                raise self._cancelled(cmd, action) from None
            self._discard(cmd.shell)
            exc.outcome_unknown = True  # the command was started: how far it got is not known
            raise

    def _cancelled(self, cmd: _Command, action: str) -> ConnectorError:
        cmd.cleanup_done.wait(30)
        confirmed = bool(cmd.cleanup_confirmed)
        error = ConnectorError(
            f"winrm: {action} on {self.target_name} was cancelled; "
            + ("the command was terminated and its shell deleted" if confirmed else "cleanup NOT confirmed"),
            reason="cancelled",
            outcome_unknown=True,
        )
        error.cleanup_confirmed = confirmed  # type: ignore[attr-defined]  # extra detail for the runner
        return error

    def _script_error(self, action: str, stderr: str, code: int) -> ConnectorError:
        message, category = clixml_message(stderr)
        text = f"winrm: {action} on {self.target_name} failed: {message}"
        if category == "ObjectNotFound":
            return NotFound(text)
        if category == "PermissionDenied":
            return Rejected(text, reason="access_denied")
        if "is not a plain directory" in message:
            return Rejected(text, reason="path_not_canonical")
        if category in ("InvalidData", "InvalidArgument"):
            return Rejected(text, reason="invalid_argument")
        return Rejected(text if message else f"{text} (exit code {code})")

    # -- actions -------------------------------------------------------------------------
    # Windows compares printer names, service names and paths without case: so do the
    # allow-lists, and the allow-listed spelling is what is sent (host_values docstring).
    def _queue(self, queue: str) -> str:
        check_name("queue", queue)
        if self.config.allowed_queues is not None:
            return check_allowed("queue", queue, self.config.allowed_queues, self.target_name, case_sensitive=False)
        return queue

    def _service(self, service: str) -> str:
        check_name("service", service)
        return check_allowed("service", service, self.config.allowed_services, self.target_name, case_sensitive=False)

    def _path(self, path: str) -> str:
        return check_path_allowed(path, self.config.cleanup_paths, self.target_name, platform="windows")

    def _unexpected(self, action: str, what: str) -> Rejected:
        return Rejected(
            f"winrm: {action} on {self.target_name} returned a result that was not understood ({what}); "
            "not acting on it",
            reason="unexpected_output",
        )

    def _count(self, action: str, result: dict[str, Any], key: str) -> int:
        value = result.get(key)
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise self._unexpected(action, f"'{key}' is not a count")
        return value

    def _jobs(self, action: str, result: dict[str, Any]) -> list[dict[str, Any]]:
        jobs = result.get("jobs")
        if jobs is None:
            jobs = []
        elif isinstance(jobs, dict):  # ConvertTo-Json may unwrap a one-element array
            jobs = [jobs]
        if not isinstance(jobs, list) or not all(isinstance(j, dict) and "id" in j for j in jobs):
            raise self._unexpected(action, "the job list")
        if self._count(action, result, "count") != len(jobs):
            raise self._unexpected(action, "the job count does not match the jobs listed")
        return jobs

    def print_queue_list(self, *, timeout: float, queue: str, expect_empty: bool = False) -> dict[str, Any]:
        result = self._run_script("print_queue_list", {"Queue": self._queue(queue)}, timeout)
        jobs = self._jobs("print_queue_list", result)
        if expect_empty and jobs:
            raise Rejected(
                f"winrm: {len(jobs)} job(s) still in print queue '{queue}' on {self.target_name}",
                reason="jobs_remain",
            )
        return {"queue": queue, "jobs": jobs, "count": len(jobs)}

    def print_queue_clear(self, *, timeout: float, queue: str, expect_empty: bool = False) -> dict[str, Any]:
        """Remove every job, then count again on the server; ``changed`` = a job was removed."""
        # Remove-PrintJob's own errors are silenced in the script: "no such printer" / "not
        # allowed" come from Get-Printer, before anything was removed; anything else may follow
        result = self._changing_script(
            "print_queue_clear", {"Queue": self._queue(queue)}, timeout, ("not_found", "access_denied")
        )
        try:
            cancelled = self._count("print_queue_clear", result, "cancelled")
            remaining = self._count("print_queue_clear", result, "remaining")
        except ConnectorError as exc:
            exc.outcome_unknown = True  # the script ran to its end: jobs may be gone
            raise
        if expect_empty and remaining:
            raise Rejected(
                f"winrm: {cancelled} job(s) removed but {remaining} job(s) still in print queue '{queue}' "
                f"on {self.target_name}",
                reason="jobs_remain",
            )
        return {"queue": queue, "cancelled": cancelled, "remaining": remaining, "changed": cancelled > 0}

    def spooler_restart(self, *, timeout: float) -> dict[str, Any]:
        """Restart the print spooler; confirmed as ``service_restart`` is (it answered success
        with ``running: false`` when the spooler did not come back)."""
        deadline = time.monotonic() + timeout
        result = self._changing_script("spooler_restart", {}, timeout, _BEFORE_RESTART)
        try:
            return self._confirm_restart("Spooler", "Spooler", result, deadline)
        except ConnectorError as exc:
            exc.outcome_unknown = True  # Restart-Service ran: never "nothing was applied"
            raise

    def _service_result(self, result: dict[str, Any], service: str) -> dict[str, Any]:
        """The script's ``running`` (a JSON boolean) and ``state`` (Get-Service's status as text),
        believed only when they agree: a string such as ``"False"`` is not taken as running, and
        ``running`` true beside a state other than ``Running`` is not understood (``Rejected``,
        reason ``unexpected_output``)."""
        running, state = result.get("running"), result.get("state")
        if not isinstance(running, bool):
            raise self._unexpected("service", "'running' is not true or false")
        if not isinstance(state, str) or not state.strip():
            raise self._unexpected("service", "'state' is not a status")
        if running != (state.strip().lower() == "running"):
            raise self._unexpected("service", f"'running' is {str(running).lower()} but the state is {state[:40]!r}")
        return {"service": service, "running": running, "state": state}

    def service_status(self, *, timeout: float, service: str, expect_running: bool = False) -> dict[str, Any]:
        status = self._service_result(
            self._run_script("service_status", {"Service": self._service(service)}, timeout), service
        )
        if expect_running and not status["running"]:
            raise Rejected(
                f"winrm: service '{service}' is not running on {self.target_name} ({status['state']})",
                reason="not_running",
            )
        return status

    def service_restart(self, *, timeout: float, service: str) -> dict[str, Any]:
        """Restart-Service, then Get-Service, and Get-Service again ``restart_settle_seconds``
        later: ``changed`` is True (a restart happened)."""
        deadline = time.monotonic() + timeout
        name = self._service(service)
        result = self._changing_script("service_restart", {"Service": name}, timeout, _BEFORE_RESTART)
        try:
            return self._confirm_restart(service, name, result, deadline)
        except ConnectorError as exc:
            # Restart-Service ran: the service was stopped and started again, so a failure
            # from here on is never "nothing was applied" (audit outcome unknown, not failure)
            exc.outcome_unknown = True
            raise

    def _confirm_restart(self, service: str, name: str, result: dict[str, Any], deadline: float) -> dict[str, Any]:
        """The restart script's state says running, and Get-Service (of *name*, the checked
        spelling) still does ``restart_settle_seconds`` later."""
        status = self._service_result(result, service)
        if not status["running"]:
            raise Rejected(
                f"winrm: service '{service}' on {self.target_name} is not running after the restart "
                f"({status['state']})",
                reason="not_running",
            )
        settle = self.config.restart_settle_seconds
        if settle > 0:  # still running a moment later: a service that stops right after its start is no fix
            time.sleep(min(settle, max(0.0, deadline - time.monotonic())))
            left = max(0.1, deadline - time.monotonic())
            status = self._service_result(self._run_script("service_status", {"Service": name}, left), service)
            if not status["running"]:
                raise Rejected(
                    f"winrm: service '{service}' on {self.target_name} stopped again within {settle:g} s of "
                    f"the restart ({status['state']})",
                    reason="not_running",
                )
        was = result.get("was_running")
        return {**status, "changed": True, **({"was_running": was} if isinstance(was, bool) else {})}

    def disk_usage(self, *, timeout: float, path: str) -> dict[str, Any]:
        path = self._path(path)
        result = self._run_script("disk_usage", {"Path": path}, timeout)
        counts = {k: self._count("disk_usage", result, k) for k in ("total_bytes", "used_bytes", "free_bytes")}
        percent = result.get("used_percent")
        if isinstance(percent, bool) or not isinstance(percent, int | float):
            raise self._unexpected("disk_usage", "'used_percent' is not a number")
        return {"path": path, **counts, "used_percent": float(percent)}

    def disk_cleanup(self, *, timeout: float, path: str) -> dict[str, Any]:
        """Delete old files; ``changed`` = at least one file was removed."""
        days = self.config.cleanup_older_than_days
        path = self._path(path)
        # Only the root check (not a plain directory) and a bad argument come before any file
        # is removed; a file that could not be removed (access denied, gone) stops the walk
        # after others were: outcome unknown
        result = self._changing_script(
            "disk_cleanup", {"Path": path, "OlderThanDays": days}, timeout, ("path_not_canonical", "invalid_argument")
        )
        try:
            removed = self._count("disk_cleanup", result, "files_removed")
            freed = self._count("disk_cleanup", result, "freed_bytes")
        except ConnectorError as exc:
            exc.outcome_unknown = True  # the walk ran to its end: files may be gone
            raise
        return {
            "path": path,
            "freed_bytes": freed,
            "files_removed": removed,
            "older_than_days": days,
            "changed": removed > 0,
        }


# what Restart-Service raises before it stops anything: no such service, not allowed to stop it
_BEFORE_RESTART = ("not_found", "access_denied")


def _ran(error: ConnectorError) -> ConnectorError:
    """*error* marked as raised by a script that ran (``_changing_script``)."""
    error.script_ran = True  # type: ignore[attr-defined]  # read back with getattr
    return error


def _unlink(path: str) -> None:
    with contextlib.suppress(OSError):
        os.unlink(path)
