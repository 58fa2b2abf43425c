"""SSH plumbing for the ssh connector: a pooled paramiko client per target, argv execution
through a tiny remote launcher, size-capped output, and remote process-group cleanup.

How a command runs. The argv is quoted with ``shlex.join`` (each element ``shlex.quote``-d)
and wrapped in a fixed launcher::

    exec env LC_ALL=C LANG=C setsid -w sh -c 'echo $$; exec "$@"' firstline ARGV...

``env LC_ALL=C LANG=C`` comes first, so every program of the command runs in the C locale
whatever the host's default (``LANG=de_DE.UTF-8`` in /etc/default/locale or a profile): the
connector reads their messages ("No such file or directory", "Permission denied", sudo's
refusals), and those are translated otherwise. It stands before ``sudo`` too: sudo's own
messages follow the caller's locale, sudo passes ``LC_ALL``/``LANG`` on to the command (they
are in its default ``env_check`` list; with them set, GNU gettext also ignores ``LANGUAGE``),
and what sudoers matches stays ``systemctl restart -- NAME`` (``sudo env ...`` would need a
sudoers rule for ``env``, which allows any command).

``setsid`` gives the command its own session and process group; the launcher prints that
group id on the first stdout line, then ``exec``-s the real command. When the step times out
or is cancelled, the channel is closed and a *fresh* channel runs a fixed kill script
(``kill -TERM -PGID``, wait, ``kill -KILL``, check ``kill -0``): its exit status says whether
the cleanup was confirmed.
"""

from __future__ import annotations

import contextlib
import io
import posixpath
import shlex
import socket
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import paramiko

from connectors.base import AuthFailed, ConnectorError, Interrupted, Timeout, Unreachable
from connectors.known_hosts import HostKeyCheck, KnownHosts, host_key_algorithms

__all__ = ["C_LOCALE", "ExecResult", "SshPool", "load_private_key", "parse_known_hosts"]

C_LOCALE = ("env", "LC_ALL=C", "LANG=C")
LAUNCHER = ("exec", *C_LOCALE, "setsid", "-w", "sh", "-c", 'echo $$; exec "$@"', "firstline")
# $1 = process group id (digits only, checked before use). Exit 0 = no live process is left in
# the group. Zombies do not count: `kill -0` succeeds on them until their new parent reaps them.
KILL_SCRIPT = (
    "alive() { ps -e -o pgid= -o stat= | awk -v g=\"$1\" '$1 == g && $2 !~ /^Z/ { f = 1 } END { exit !f }'; }; "
    'kill -TERM "-$1" 2>/dev/null; '
    'i=0; while [ $i -lt 20 ]; do alive "$1" || exit 0; sleep 0.05; i=$((i+1)); done; '
    'kill -KILL "-$1" 2>/dev/null; sleep 0.1; '
    'alive "$1" && exit 1; exit 0'
)
CLEANUP_TIMEOUT = 5.0


@dataclass(frozen=True)
class ExecResult:
    """Exit status and captured output (each stream capped at the target's limit)."""

    exit_status: int
    stdout: str
    stderr: str
    truncated: bool = False


class _LowLatencySocket(socket.socket):
    """TCP socket with TCP_NODELAY that re-arms TCP_QUICKACK after every receive.

    Without these, Nagle's algorithm meeting delayed ACKs on loopback stalls each exec by
    ~40 ms (see services.md, latency traps).
    """

    def recv(self, bufsize: int, flags: int = 0) -> bytes:
        data = super().recv(bufsize, flags)
        if hasattr(socket, "TCP_QUICKACK"):
            with contextlib.suppress(OSError):
                self.setsockopt(socket.IPPROTO_TCP, socket.TCP_QUICKACK, 1)
        return data


def _open_socket(address: str, port: int, timeout: float) -> socket.socket:
    last: OSError | None = None
    for family, kind, proto, _name, sockaddr in socket.getaddrinfo(address, port, type=socket.SOCK_STREAM):
        sock = _LowLatencySocket(family, kind, proto)
        try:
            sock.settimeout(timeout)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            sock.connect(sockaddr)
            return sock
        except OSError as exc:
            sock.close()
            last = exc
    raise last if last is not None else OSError(f"no address for {address}")


def _abandon(client: paramiko.SSHClient, sock: socket.socket) -> None:
    """Stop paramiko's transport thread before closing the socket (no stray socket errors)."""
    client.close()
    sock.close()


def _program(argv: Sequence[str]) -> str:
    """The program an argv runs, for messages: past ``env VAR=...`` and ``sudo -n``, without its
    directory (messages shown to people carry no server paths)."""
    rest = list(argv)
    while rest and (rest[0] in ("env", "sudo", "-n") or ("=" in rest[0] and not rest[0].startswith("/"))):
        rest.pop(0)
    return posixpath.basename(rest[0]) if rest else "command"


def load_private_key(text: str) -> paramiko.PKey:
    """Parse an OpenSSH/PEM private key held in memory (never written to disk)."""
    for cls in (paramiko.Ed25519Key, paramiko.ECDSAKey, paramiko.RSAKey):
        try:
            return cls.from_private_key(io.StringIO(text))
        except (paramiko.SSHException, ValueError, TypeError, AssertionError, IndexError):
            continue  # paramiko's parsers raise all of these for malformed input
    raise AuthFailed("ssh: the configured private key cannot be read (unknown type or has a passphrase)")


def parse_known_hosts(text: str) -> KnownHosts:
    """Parse known_hosts content as OpenSSH reads it (see ``connectors.known_hosts``).

    Raises ``KnownHostsError`` (a ``ValueError``) naming the first line that cannot be read.
    """
    return KnownHosts.parse(text)


class _HostKeyRefused(paramiko.SSHException):
    """Raised by ``_KnownHostsPolicy``: the presented key is not trusted for this host."""

    def __init__(self, verdict: str, key: paramiko.PKey) -> None:
        super().__init__(f"host key {verdict}")
        self.verdict = verdict
        self.key = key


class _KnownHostsPolicy(paramiko.MissingHostKeyPolicy):
    """Decides on the server's key with our known_hosts reading (paramiko's own store stays empty)."""

    def __init__(self, check: HostKeyCheck) -> None:
        self.check = check

    def missing_host_key(self, client: paramiko.SSHClient, hostname: str, key: paramiko.PKey) -> None:
        verdict = self.check.verdict(key)
        if verdict != "trusted":
            raise _HostKeyRefused(verdict, key)


def _transport_factory(preferred: list[str]) -> Callable[..., paramiko.Transport]:
    """A Transport that offers the host key algorithms known_hosts trusts first (as OpenSSH does)."""

    def make(sock: socket.socket, disabled_algorithms: dict[str, list[str]] | None = None) -> paramiko.Transport:
        transport = paramiko.Transport(sock, disabled_algorithms=disabled_algorithms)
        options = transport.get_security_options()
        current = list(options.key_types)
        first = [a for a in preferred if a in current]
        options.key_types = [*first, *(a for a in current if a not in first)]
        return transport

    return make


@dataclass
class _Inflight:
    channel: paramiko.Channel
    pgid: int | None = None
    cancelled: bool = False
    cleanup_confirmed: bool | None = None
    cleanup_done: threading.Event = field(default_factory=threading.Event)


class SshPool:
    """One live SSH connection to one host, shared by every run of the target.

    Thread-safe: paramiko multiplexes channels over the transport; ``connect`` is
    serialized. A dead connection is replaced transparently on the next call.
    """

    def __init__(
        self,
        *,
        target: str,
        address: str,
        port: int,
        username: str,
        connect_timeout: float,
        max_output_bytes: int,
        credentials: Callable[[], tuple[paramiko.PKey, str | None]],
        known_hosts: Callable[[], KnownHosts],
    ) -> None:
        self.target = target
        self.address = address
        self.port = port
        self.username = username
        self.connect_timeout = connect_timeout
        self.max_output_bytes = max_output_bytes
        self._credentials = credentials
        self._known_hosts = known_hosts
        self._client: paramiko.SSHClient | None = None
        self._lock = threading.Lock()
        self._inflight: dict[int, _Inflight] = {}
        self._inflight_lock = threading.Lock()
        self.connects = 0  # how many times a connection was opened (tests check reuse)

    # -- connection -------------------------------------------------------------------
    def _where(self) -> str:
        return f"{self.target} ({self.address}:{self.port})"

    def transport(self) -> paramiko.Transport:
        with self._lock:
            client = self._client
            transport = client.get_transport() if client is not None else None
            if transport is not None and transport.is_active():
                return transport
            if client is not None:
                client.close()
                self._client = None
            self._client = self._connect()
            self.connects += 1
            transport = self._client.get_transport()
            assert transport is not None
            return transport

    def _connect(self) -> paramiko.SSHClient:
        where = self._where()
        check = self._known_hosts().for_host(self.address, self.port)
        client = paramiko.SSHClient()
        client.set_missing_host_key_policy(_KnownHostsPolicy(check))
        try:
            sock = _open_socket(self.address, self.port, self.connect_timeout)
        except TimeoutError as exc:
            raise Unreachable(f"ssh: {where} did not answer within {self.connect_timeout:g} s") from exc
        except OSError as exc:
            raise Unreachable(f"ssh: cannot reach {where}: {exc.strerror or exc}") from exc
        pkey, password = self._credentials()
        try:
            client.connect(
                self.address,
                port=self.port,
                username=self.username,
                pkey=pkey,
                password=password,
                sock=sock,
                timeout=self.connect_timeout,
                banner_timeout=self.connect_timeout,
                auth_timeout=self.connect_timeout,
                look_for_keys=False,
                allow_agent=False,
                transport_factory=_transport_factory(host_key_algorithms(check.trusted)),
            )
        except _HostKeyRefused as exc:
            _abandon(client, sock)
            raise self._host_key_error(exc.verdict, exc.key, check) from exc
        except paramiko.AuthenticationException as exc:
            _abandon(client, sock)
            raise AuthFailed(f"ssh: {where} refused the credentials of user {self.username}") from exc
        except paramiko.SSHException as exc:
            _abandon(client, sock)
            raise Unreachable(f"ssh: SSH handshake with {where} failed: {exc}") from exc
        except (OSError, EOFError) as exc:  # TimeoutError is an OSError
            _abandon(client, sock)
            raise Unreachable(f"ssh: connection to {where} failed during the handshake") from exc
        sock.settimeout(None)
        return client

    def _host_key_error(self, verdict: str, key: paramiko.PKey, check: HostKeyCheck) -> AuthFailed:
        where = self._where()
        shown = f"{key.get_name()} {key.fingerprint}"
        if verdict == "revoked":
            return AuthFailed(
                f"ssh: the host key of {where} ({shown}) is marked @revoked in known_hosts; refusing to "
                "connect. Check the host's new key out of band and list it in known_hosts.",
                reason="host_key_revoked",
            )
        if verdict == "changed":
            return AuthFailed(
                f"ssh: the host key of {where} has CHANGED since it was recorded in known_hosts "
                f"(now {shown}); refusing to connect. If the host was "
                "rebuilt, check the new key out of band and update known_hosts.",
                reason="host_key_changed",
            )
        hint = (
            " known_hosts names a @cert-authority for this host, but host certificates are not supported: "
            "list the host's own key."
            if check.cert_authorities
            else ""
        )
        return AuthFailed(
            f"ssh: the host key of {where} is unknown (not in known_hosts, presented {shown}); "
            f"refusing to connect.{hint}",
            reason="host_key_unknown",
        )

    def close(self) -> None:
        with self._lock:
            if self._client is not None:
                self._client.close()
                self._client = None

    # -- execution --------------------------------------------------------------------
    def _open_channel(self) -> paramiko.Channel:
        try:
            return self.transport().open_session(timeout=self.connect_timeout)
        except ConnectorError:
            raise
        except (paramiko.SSHException, OSError, EOFError):
            # The pooled connection died between calls: reconnect once. No command ran yet.
            self.close()
            try:
                return self.transport().open_session(timeout=self.connect_timeout)
            except (paramiko.SSHException, OSError, EOFError) as exc:
                raise Unreachable(f"ssh: lost the connection to {self._where()}") from exc

    def run(
        self,
        argv: Sequence[str],
        *,
        timeout: float,
        max_output: int | None = None,
        on_stdout: Callable[[bytes], None] | None = None,
    ) -> ExecResult:
        """Run *argv* (already validated) under the launcher; kill it remotely on timeout.

        With *on_stdout*, standard output is handed to it chunk by chunk as it arrives (after
        the launcher's first line) and not kept: nothing of it is cut at the output limit, and
        the result's ``stdout`` is empty (``truncated`` then speaks of stderr only).
        """
        cap = max_output or self.max_output_bytes
        deadline = time.monotonic() + max(timeout, 0.001)
        command = shlex.join([*LAUNCHER, *argv])
        channel = self._open_channel()
        inflight = _Inflight(channel)
        key = id(inflight)
        with self._inflight_lock:
            self._inflight[key] = inflight
        try:
            try:
                channel.exec_command(command)
                result = self._collect(channel, inflight, deadline, cap, on_stdout)
            except TimeoutError as exc:
                confirmed = self._cleanup(inflight)
                err = Timeout(
                    f"ssh: '{_program(argv)}' on {self.target} did not finish within {timeout:g} s; "
                    + (
                        "the remote process group was killed (cleanup confirmed)"
                        if confirmed
                        else "killing the remote process group could NOT be confirmed"
                    ),
                    outcome_unknown=True,  # the command ran for a while: how far it got is not known
                )
                err.cleanup_confirmed = confirmed  # type: ignore[attr-defined]  # extra detail for the runner
                raise err from exc
            except KeyboardInterrupt:
                # the operator stopped the run: the remote command must not outlive it (security.md 50)
                raise Interrupted.after_cleanup(
                    f"ssh: '{_program(argv)}' on {self.target}",
                    self._cleanup(inflight),
                    done="the remote process group was killed",
                    not_done="killing it could NOT be confirmed",
                ) from None
            except (paramiko.SSHException, OSError, EOFError) as exc:
                if not inflight.cancelled:
                    self._cleanup(inflight)
                    where = self._where()
                    raise Unreachable(
                        f"ssh: the connection to {where} failed during '{_program(argv)}'", outcome_unknown=True
                    ) from exc
            if inflight.cancelled:
                inflight.cleanup_done.wait(CLEANUP_TIMEOUT + self.connect_timeout)
                confirmed = bool(inflight.cleanup_confirmed)
                cancelled = ConnectorError(
                    f"ssh: '{_program(argv)}' on {self.target} was cancelled; "
                    + ("the remote process group was killed" if confirmed else "cleanup NOT confirmed"),
                    reason="cancelled",
                    outcome_unknown=True,
                )
                cancelled.cleanup_confirmed = confirmed  # type: ignore[attr-defined]
                raise cancelled
            return result
        finally:
            with self._inflight_lock:
                self._inflight.pop(key, None)
            channel.close()

    def _collect(
        self,
        channel: paramiko.Channel,
        inflight: _Inflight,
        deadline: float,
        cap: int,
        on_stdout: Callable[[bytes], None] | None = None,
    ) -> ExecResult:
        out = bytearray()
        err = bytearray()
        truncated = False
        head = bytearray()

        def take_stdout(chunk: bytes) -> None:
            nonlocal truncated
            if on_stdout is not None:
                if chunk:
                    on_stdout(chunk)
                return
            if len(out) < cap:
                out.extend(chunk[: cap - len(out)])
            truncated = truncated or len(out) + len(chunk) > cap

        def remaining() -> float:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError
            return left

        def take_stderr() -> None:
            nonlocal truncated
            while channel.recv_stderr_ready():
                chunk = channel.recv_stderr(65536)
                if len(err) < cap:
                    err.extend(chunk[: cap - len(err)])
                truncated = truncated or len(err) + len(chunk) > cap

        # 1) the launcher's first line: the remote process group id
        while inflight.pgid is None:
            channel.settimeout(remaining())
            chunk = channel.recv(4096)  # socket.timeout is TimeoutError
            if not chunk:
                break
            head.extend(chunk)
            if b"\n" in head:
                first, _, rest = bytes(head).partition(b"\n")
                if first.strip().isascii() and first.strip().isdigit():
                    inflight.pgid = int(first.strip())
                take_stdout(rest)
                break
        if inflight.pgid is None and head and b"\n" not in head:
            take_stdout(bytes(head))
        # 2) stdout until EOF (stderr drained on the way), then stderr, then the exit status
        while True:
            take_stderr()
            channel.settimeout(remaining())
            chunk = channel.recv(65536)  # socket.timeout is TimeoutError
            if not chunk:
                break
            take_stdout(chunk)
        while True:
            channel.settimeout(remaining())
            chunk = channel.recv_stderr(65536)  # socket.timeout is TimeoutError
            if not chunk:
                break
            if len(err) < cap:
                err.extend(chunk[: cap - len(err)])
            truncated = truncated or len(err) + len(chunk) > cap
        if not channel.status_event.wait(remaining()):
            raise TimeoutError
        status = channel.recv_exit_status()
        return ExecResult(
            status,
            out.decode("utf-8", "replace"),
            err.decode("utf-8", "replace"),
            truncated,
        )

    def _cleanup(self, inflight: _Inflight) -> bool:
        """Close the channel and kill the remote process group; True when confirmed gone."""
        with contextlib.suppress(Exception):
            inflight.channel.close()
        pgid = inflight.pgid
        if pgid is None or pgid <= 1:
            return False
        try:
            channel = self._open_channel()
        except ConnectorError:
            return False
        try:
            channel.exec_command(shlex.join([*C_LOCALE, "sh", "-c", KILL_SCRIPT, "firstline-kill", str(pgid)]))
            return channel.status_event.wait(CLEANUP_TIMEOUT) and channel.recv_exit_status() == 0
        except (paramiko.SSHException, OSError, EOFError):
            return False
        finally:
            channel.close()

    def cancel_all(self) -> bool:
        """Stop every command in flight on this host; True when each cleanup was confirmed."""
        with self._inflight_lock:
            running = list(self._inflight.values())
        results = []
        for item in running:
            item.cancelled = True
            item.cleanup_confirmed = self._cleanup(item)
            item.cleanup_done.set()
            results.append(item.cleanup_confirmed)
        return all(results)
