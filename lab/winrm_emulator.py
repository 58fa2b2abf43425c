"""WS-Management (WinRS) endpoint emulator for the winrm connector's tests.

There is no WinRM server on Linux. This emulator speaks the part of WS-Management that
pywinrm uses — transfer/Create, shell/Command, shell/Send, shell/Receive, shell/Signal,
transfer/Delete — over HTTP and HTTPS with Basic auth, and plays a small, scripted Windows
print/service host:

* It recognises ONLY the winrm connector's fixed scripts (``connectors/winrm_scripts.py``),
  by the SHA-256 of the ``-EncodedCommand`` text. It never evaluates anything: it binds the
  stdin parameters (base64 JSON) the way PowerShell's binder would (names, mandatory, type,
  ValidatePattern/Length/Range) and runs a Python handler per script.
* State (printers and their jobs, services, cleanup directories, shells) lives in memory;
  errors come back as CLIXML on stderr with exit code 1, like powershell.exe.
* A service ``HangSvc`` whose restart never finishes: Receive answers with the
  OperationTimeout fault (2150858793) until the command is signalled or its shell deleted.
* Control endpoint for tests (header ``X-Emulator-Token``): ``GET /_emulator/state``,
  ``POST /_emulator/reset``, ``POST /_emulator/seed`` (JSON: printers/services/dirs).

Usage: python lab/winrm_emulator.py --http 15985 --https 15986 --cert C --key K
           --user-file F --password-file F --token-file F
"""

from __future__ import annotations

import argparse
import base64
import binascii
import copy
import json
import re
import ssl
import sys
import threading
import time
import uuid
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from connectors.winrm_scripts import PARAMS, SCRIPTS, ScriptParam, script_sha256

NS = {
    "s": "http://www.w3.org/2003/05/soap-envelope",
    "a": "http://schemas.xmlsoap.org/ws/2004/08/addressing",
    "w": "http://schemas.dmtf.org/wbem/wsman/1/wsman.xsd",
    "rsp": "http://schemas.microsoft.com/wbem/wsman/1/windows/shell",
}
SHELL_NS = NS["rsp"]
KNOWN_SCRIPTS = {script_sha256(text): name for name, text in SCRIPTS.items()}
OPERATION_TIMEOUT_FAULT = 2150858793
DAY = 86400.0


def initial_state() -> dict[str, Any]:
    return {
        "printers": {"office-win-1": [], "office-win-2": []},
        "services": {
            "Spooler": {"state": "Running", "pid": 1400},
            "W32Time": {"state": "Running", "pid": 1500},
            "BITS": {"state": "Stopped", "pid": 0},
            "HangSvc": {"state": "Running", "pid": 1600, "hang_restart": True},
            "ProtectedSvc": {"state": "Running", "pid": 1700, "deny_restart": True},
        },
        # path -> {"reparse": bool, "files": [{"name", "size", "age_days", "reparse"}]}
        "dirs": {
            "C:\\Temp\\FirstlineLab": {"reparse": False, "files": []},
            "C:\\Temp\\LinkedAway": {"reparse": True, "files": []},
        },
        "volume": {"total": 100 * 1024**3, "free": 40 * 1024**3},
        "next_job_id": 1,
        "next_pid": 2000,
        "counters": {
            "shells_created": 0,
            "shells_deleted": 0,
            "commands": 0,
            "signals": 0,
            "terminated_running": 0,
            "unrecognized_scripts": 0,
        },
        "calls": [],  # (script name, bound parameters) of every recognised script, newest last
    }


class PSError(Exception):
    """A PowerShell error record, rendered as CLIXML."""

    def __init__(self, cmdlet: str, message: str, category: str, target: str, exception: str, fqid: str):
        super().__init__(message)
        self.lines = [
            f"{cmdlet} : {message}" if cmdlet else message,
            "At line:1 char:1",
            f"+ CategoryInfo          : {category}: ({target}) [{cmdlet}], {exception}",
            f"+ FullyQualifiedErrorId : {fqid}",
        ]


def clixml(lines: list[str]) -> bytes:
    body = "".join(f'<S S="Error">{escape(line)}_x000D__x000A_</S>' for line in lines)
    return (
        f'#< CLIXML\r\n<Objs Version="1.1.0.1" xmlns="http://schemas.microsoft.com/powershell/2004/04">{body}</Objs>'
    ).encode()


@dataclass
class Command:
    command_id: str
    command_line: str
    stdin: bytearray = field(default_factory=bytearray)
    stdin_done: bool = False
    result: tuple[bytes, bytes, int] | None = None
    hang: bool = False
    terminated: bool = False
    wake: threading.Event = field(default_factory=threading.Event)


class Emulator:
    def __init__(self, user: str, password: str, token: str) -> None:
        self.user, self.password, self.token = user, password, token
        self.lock = threading.RLock()
        self.state = initial_state()
        self.shells: dict[str, dict[str, Command]] = {}

    # -- scripted Windows behaviour --------------------------------------------------
    def bind(self, name: str, stdin: bytes) -> dict[str, Any]:
        """Bind stdin parameters as the fixed script's prelude + param() block would."""
        line = stdin.decode("cp437").split("\n", 1)[0].strip()
        try:
            raw = base64.b64decode(line, validate=True)
            data = json.loads(raw.decode("utf-8"))
        except (binascii.Error, ValueError) as exc:
            raise PSError(
                "",
                f'Exception calling "FromBase64String" with "1" argument(s): "{type(exc).__name__}"',
                "NotSpecified",
                ":",
                "MethodInvocationException",
                "FormatException",
            ) from exc
        if not isinstance(data, dict):
            raise PSError("", "Parameters must be a JSON object.", "InvalidArgument", ":", "", "FlParams")
        declared = {p.name.lower(): p for p in PARAMS[name]}
        bound: dict[str, Any] = {}
        for key, value in data.items():
            spec = declared.get(str(key).lower())
            if spec is None:
                raise PSError(
                    "",
                    f"A parameter cannot be found that matches parameter name '{key}'.",
                    "InvalidArgument",
                    ":",
                    "ParameterBindingException",
                    "NamedParameterNotFound",
                )
            bound[spec.name] = self._convert(spec, value)
        missing = [p.name for p in PARAMS[name] if p.name not in bound]
        if missing:
            raise PSError(
                "",
                "Cannot process command because of one or more missing mandatory parameters: "
                + " ".join(missing)
                + ".",
                "InvalidArgument",
                ":",
                "ParameterBindingException",
                "MissingMandatoryParameter",
            )
        return bound

    @staticmethod
    def _convert(spec: ScriptParam, value: Any) -> Any:
        def invalid(why: str) -> PSError:
            return PSError(
                "",
                f"Cannot validate argument on parameter '{spec.name}'. {why}",
                "InvalidData",
                ":",
                "ParameterBindingValidationException",
                f"ParameterArgumentValidationError,{spec.name}",
            )

        if spec.type == "int":
            if isinstance(value, bool) or not isinstance(value, int | str):
                raise invalid("The argument cannot be converted to System.Int32.")
            try:
                value = int(value)
            except ValueError:
                raise invalid(f'Cannot convert value "{value}" to type "System.Int32".') from None
            if spec.min_value is not None and value < spec.min_value:
                raise invalid(f"The {value} argument is less than the minimum allowed range of {spec.min_value}.")
            if spec.max_value is not None and value > spec.max_value:
                raise invalid(f"The {value} argument is greater than the maximum allowed range of {spec.max_value}.")
            return value
        if isinstance(value, list | dict):
            raise invalid("Cannot convert 'System.Object[]' to the type 'System.String'.")
        value = "" if value is None else str(value)
        if spec.pattern is not None and not re.search(spec.pattern, value, flags=re.I):
            raise invalid(
                f'The argument "{value}" does not match the "{spec.pattern}" pattern. Supply an argument '
                "that matches the pattern and try the command again."
            )
        if spec.min_length is not None and len(value) < spec.min_length:
            raise invalid(f"The number of characters ({len(value)}) is fewer than the minimum ({spec.min_length}).")
        if spec.max_length is not None and len(value) > spec.max_length:
            raise invalid(f"The character length ({len(value)}) exceeds the maximum ({spec.max_length}).")
        return value

    def run_script(self, name: str, args: dict[str, Any], cmd: Command) -> dict[str, Any] | None:
        """Return the script's result object, or None when the command hangs."""
        st = self.state
        if name in ("print_queue_list", "print_queue_clear"):
            queue = args["Queue"]
            printer = next((k for k in st["printers"] if k.lower() == queue.lower()), None)
            if printer is None:
                raise PSError(
                    "Get-Printer",
                    "The specified printer was not found.",
                    "ObjectNotFound",
                    "MSFT_Printer:ROOT/StandardCimv2/MSFT_Printer",
                    "CimException",
                    "HRESULT 0x80070709,Get-Printer",
                )
            jobs = st["printers"][printer]
            if name == "print_queue_clear":
                before = len(jobs)
                st["printers"][printer] = jobs = [j for j in jobs if j.get("stuck")]
                return {"queue": queue, "cancelled": before - len(jobs), "remaining": len(jobs)}
            shown = [
                {
                    "id": j["id"],
                    "user": j["user"],
                    "document": j["document"],
                    "status": "Error, Deleting" if j.get("stuck") else "Paused",
                    "size": j["size"],
                }
                for j in jobs
            ]
            return {"queue": queue, "jobs": shown, "count": len(shown)}
        if name == "spooler_restart":
            svc = st["services"]["Spooler"]
            svc.update(state="Running", pid=self._pid())
            for jobs in st["printers"].values():
                for job in jobs:
                    job["stuck"] = False  # a fresh spooler lets stuck jobs be removed
            return {"service": "Spooler", "running": True, "state": "Running"}
        if name in ("service_status", "service_restart"):
            cmdlet = "Get-Service" if name == "service_status" else "Restart-Service"
            wanted = args["Service"]
            key = next((k for k in st["services"] if k.lower() == wanted.lower()), None)
            if key is None:
                raise PSError(
                    cmdlet,
                    f"Cannot find any service with service name '{wanted}'.",
                    "ObjectNotFound",
                    f"{wanted}:String",
                    "ServiceCommandException",
                    f"NoServiceFoundForGivenName,Microsoft.PowerShell.Commands.{cmdlet.replace('-', '')}Command",
                )
            svc = st["services"][key]
            if name == "service_restart":
                if svc.get("hang_restart"):
                    cmd.hang = True
                    return None
                if svc.get("deny_restart"):
                    raise PSError(
                        cmdlet,
                        f"Service '{key} ({key})' cannot be stopped due to the following error: "
                        f"Cannot open {key} service on computer '.'.",
                        "PermissionDenied",
                        "System.ServiceProcess.ServiceController:ServiceController",
                        "ServiceCommandException",
                        "CouldNotStopService,Microsoft.PowerShell.Commands.RestartServiceCommand",
                    )
                was = svc["state"] == "Running"
                svc.update(state="Running", pid=self._pid())
                return {"service": key, "running": True, "state": svc["state"], "was_running": was}
            return {"service": key, "running": svc["state"] == "Running", "state": svc["state"]}
        if name in ("disk_usage", "disk_cleanup"):
            path = args["Path"]
            entry = next((v for k, v in st["dirs"].items() if k.lower() == path.lower()), None)
            if entry is None:
                raise PSError(
                    "Get-Item",
                    f"Cannot find path '{path}' because it does not exist.",
                    "ObjectNotFound",
                    f"{path}:String",
                    "ItemNotFoundException",
                    "PathNotFound,Microsoft.PowerShell.Commands.GetItemCommand",
                )
            vol = st["volume"]
            if name == "disk_usage":
                used = vol["total"] - vol["free"]
                return {
                    "path": path,
                    "total_bytes": vol["total"],
                    "used_bytes": used,
                    "free_bytes": vol["free"],
                    "used_percent": round(100.0 * used / vol["total"], 1),
                }
            if entry["reparse"]:
                raise PSError(
                    "",
                    f"Cleanup path '{path}' is not a plain directory.",
                    "OperationStopped",
                    ":",
                    "UnauthorizedAccessException",
                    f"Cleanup path '{path}' is not a plain directory.",
                )
            days = args["OlderThanDays"]
            keep, freed, removed = [], 0, 0
            for f in entry["files"]:
                if not f.get("reparse") and f["age_days"] > days:
                    freed += f["size"]
                    removed += 1
                else:
                    keep.append(f)
            entry["files"] = keep
            vol["free"] += freed
            return {"path": path, "freed_bytes": freed, "files_removed": removed, "older_than_days": days}
        raise PSError("", f"no handler for {name}", "NotImplemented", ":", "", "Emulator")

    def _pid(self) -> int:
        self.state["next_pid"] += 4
        return int(self.state["next_pid"])

    def execute(self, cmd: Command) -> None:
        """Run a command whose stdin is complete (called with the lock held)."""
        m = re.search(r"-EncodedCommand\s+([A-Za-z0-9+/=]+)", cmd.command_line, flags=re.I)
        if not m:
            exe = cmd.command_line.split()[0] if cmd.command_line.split() else ""
            if exe.lower() == "hostname":
                cmd.result = (b"FL-EMULATED-WIN\r\n", b"", 0)
            else:
                msg = f"'{exe}' is not recognized as an internal or external command (emulator)\r\n"
                cmd.result = (b"", msg.encode(), 1)
            return
        try:
            script = base64.b64decode(m.group(1)).decode("utf-16-le")
        except (binascii.Error, UnicodeDecodeError):
            cmd.result = (b"", clixml(["Cannot decode the -EncodedCommand argument."]), 1)
            return
        name = KNOWN_SCRIPTS.get(script_sha256(script))
        if name is None:
            self.state["counters"]["unrecognized_scripts"] += 1
            cmd.result = (
                b"",
                clixml(["The emulator runs only Firstline's fixed scripts; this script was not recognised."]),
                1,
            )
            return
        try:
            args = self.bind(name, bytes(cmd.stdin))
            self.state["calls"].append([name, args])
            del self.state["calls"][:-50]
            result = self.run_script(name, args, cmd)
        except PSError as err:
            cmd.result = (b"", clixml(err.lines), 1)
            return
        if result is not None:
            cmd.result = ((json.dumps(result, separators=(",", ":")) + "\r\n").encode(), b"", 0)

    # -- control ---------------------------------------------------------------------
    def seed(self, data: dict[str, Any]) -> None:
        st = self.state
        for queue, jobs in (data.get("printers") or {}).items():
            target = st["printers"].setdefault(queue, [])
            for job in jobs:
                target.append(
                    {
                        "id": st["next_job_id"],
                        "user": job.get("user", "CORP\\jdoe"),
                        "document": job.get("document", "report.pdf"),
                        "size": int(job.get("size", 1024)),
                        "stuck": bool(job.get("stuck", False)),
                    }
                )
                st["next_job_id"] += 1
        for name, svc in (data.get("services") or {}).items():
            st["services"].setdefault(name, {"state": "Running", "pid": self._pid()}).update(svc)
        for path, entry in (data.get("dirs") or {}).items():
            target_dir = st["dirs"].setdefault(path, {"reparse": False, "files": []})
            target_dir["reparse"] = bool(entry.get("reparse", target_dir["reparse"]))
            target_dir["files"].extend(entry.get("files", []))

    def snapshot(self) -> dict[str, Any]:
        snap = copy.deepcopy(self.state)
        snap["live_shells"] = len(self.shells)
        snap["live_commands"] = sum(len(c) for c in self.shells.values())
        snap["hanging_commands"] = sum(1 for c in self.shells.values() for x in c.values() if x.hang)
        return snap


def envelope(action: str, relates_to: str, body: str = "") -> bytes:
    return (
        f'<?xml version="1.0" encoding="utf-8"?><s:Envelope xmlns:s="{NS["s"]}" xmlns:a="{NS["a"]}" '
        f'xmlns:w="{NS["w"]}" xmlns:x="http://schemas.xmlsoap.org/ws/2004/09/transfer" xmlns:rsp="{SHELL_NS}">'
        f"<s:Header><a:Action>{action}</a:Action><a:MessageID>uuid:{uuid.uuid4()}</a:MessageID>"
        "<a:To>http://schemas.xmlsoap.org/ws/2004/08/addressing/role/anonymous</a:To>"
        f"<a:RelatesTo>{escape(relates_to)}</a:RelatesTo></s:Header><s:Body>{body}</s:Body></s:Envelope>"
    ).encode()


def fault(relates_to: str, reason: str, code: int, subcode: str = "w:InvalidSelectors") -> bytes:
    return envelope(
        "http://schemas.dmtf.org/wbem/wsman/1/wsman/fault",
        relates_to,
        f"<s:Fault><s:Code><s:Value>s:Receiver</s:Value><s:Subcode><s:Value>{subcode}</s:Value></s:Subcode>"
        f'</s:Code><s:Reason><s:Text xml:lang="en-US">{escape(reason)}</s:Text></s:Reason><s:Detail>'
        f'<f:WSManFault xmlns:f="http://schemas.microsoft.com/wbem/wsman/1/wsmanfault" Code="{code}" '
        f'Machine="127.0.0.1"><f:Message>{escape(reason)}</f:Message></f:WSManFault></s:Detail></s:Fault>',
    )


def operation_timeout(root: ET.Element) -> float:
    text = root.findtext("s:Header/w:OperationTimeout", default="PT20S", namespaces=NS)
    m = re.match(r"PT([\d.]+)S", text or "")
    return min(float(m.group(1)), 60.0) if m else 20.0


def make_handler(emu: Emulator) -> type[BaseHTTPRequestHandler]:
    expected = "Basic " + base64.b64encode(f"{emu.user}:{emu.password}".encode()).decode()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = True  # headers and body are separate writes (services.md trap)

        def log_message(self, format: str, *args: Any) -> None:
            pass

        def reply(self, status: int, body: bytes = b"", ctype: str = "application/soap+xml;charset=UTF-8",
                  extra: tuple[tuple[str, str], ...] = ()) -> None:  # fmt: skip
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            for k, v in extra:
                self.send_header(k, v)
            self.end_headers()
            self.wfile.write(body)

        def _body(self) -> bytes:
            return self.rfile.read(int(self.headers.get("Content-Length") or 0))

        # -- control endpoint ---------------------------------------------------------
        def _control(self, method: str) -> None:
            data = self._body() if method == "POST" else b""
            if self.headers.get("X-Emulator-Token") != emu.token:
                self.reply(403, b'{"error":"bad token"}', "application/json")
                return
            with emu.lock:
                if method == "POST" and self.path == "/_emulator/reset":
                    emu.state = initial_state()
                    for commands in emu.shells.values():
                        for leftover in commands.values():
                            leftover.result = leftover.result or (b"", b"", 1067)
                            leftover.wake.set()
                    emu.shells.clear()
                elif method == "POST" and self.path == "/_emulator/seed":
                    emu.seed(json.loads(data or b"{}"))
                elif not (method == "GET" and self.path == "/_emulator/state"):
                    self.reply(404, b'{"error":"unknown"}', "application/json")
                    return
                out = json.dumps(emu.snapshot()).encode()
            self.reply(200, out, "application/json")

        def do_GET(self) -> None:
            if self.path.startswith("/_emulator/"):
                self._control("GET")
            else:
                self.reply(405, b"", "text/plain")

        def do_POST(self) -> None:
            if self.path.startswith("/_emulator/"):
                self._control("POST")
                return
            data = self._body()
            if self.path.rstrip("/") != "/wsman":
                self.reply(404, b"", "text/plain")
                return
            if self.headers.get("Authorization") != expected:
                self.reply(401, b"", "text/plain", (("WWW-Authenticate", 'Basic realm="WSMAN"'),))
                return
            try:
                root = ET.fromstring(data)
            except ET.ParseError:
                self.reply(400, b"", "text/plain")
                return
            status, out = self.wsman(root)
            self.reply(status, out)

        def wsman(self, root: ET.Element) -> tuple[int, bytes]:
            action = root.findtext("s:Header/a:Action", default="", namespaces=NS)
            msg_id = root.findtext("s:Header/a:MessageID", default="", namespaces=NS)
            shell_id = root.findtext("s:Header/w:SelectorSet/w:Selector[@Name='ShellId']", namespaces=NS)
            body = root.find("s:Body", NS)
            assert body is not None
            counters = emu.state["counters"]
            if action.endswith("transfer/Create"):
                with emu.lock:
                    sid = str(uuid.uuid4()).upper()
                    emu.shells[sid] = {}
                    counters["shells_created"] += 1
                return 200, envelope(
                    action + "Response",
                    msg_id,
                    "<x:ResourceCreated><a:Address>http://127.0.0.1/wsman</a:Address><a:ReferenceParameters>"
                    f"<w:ResourceURI>{SHELL_NS}/cmd</w:ResourceURI><w:SelectorSet>"
                    f'<w:Selector Name="ShellId">{sid}</w:Selector></w:SelectorSet></a:ReferenceParameters>'
                    "</x:ResourceCreated>",
                )
            with emu.lock:
                commands = emu.shells.get(shell_id or "")
            if commands is None:
                return 500, fault(
                    msg_id,
                    f"The request for the Windows Remote Shell with ShellId {shell_id} failed because the shell "
                    "was not found on the server. Possible causes are: the specified ShellId is incorrect or "
                    "the shell no longer exists on the server.",
                    2150858843,
                )
            if action.endswith("shell/Command"):
                line = " ".join(
                    x.strip('"')
                    for x in (
                        body.findtext("rsp:CommandLine/rsp:Command", default="", namespaces=NS),
                        body.findtext("rsp:CommandLine/rsp:Arguments", default="", namespaces=NS),
                    )
                    if x
                )
                cmd = Command(str(uuid.uuid4()).upper(), line)
                with emu.lock:
                    commands[cmd.command_id] = cmd
                    counters["commands"] += 1
                    if "-encodedcommand" not in line.lower():
                        emu.execute(cmd)  # no stdin expected
                return 200, envelope(
                    action + "Response",
                    msg_id,
                    f"<rsp:CommandResponse><rsp:CommandId>{cmd.command_id}</rsp:CommandId></rsp:CommandResponse>",
                )
            if action.endswith("shell/Send"):
                stream = body.find("rsp:Send/rsp:Stream", NS)
                cid = stream.get("CommandId") if stream is not None else None
                with emu.lock:
                    send_cmd = commands.get(cid or "")
                    if send_cmd is None or stream is None:
                        return 500, fault(msg_id, "The command was not found.", 2150858843)
                    send_cmd.stdin.extend(base64.b64decode(stream.text or ""))
                    if stream.get("End", "").lower() == "true" and not send_cmd.stdin_done:
                        send_cmd.stdin_done = True
                        emu.execute(send_cmd)
                        send_cmd.wake.set()
                return 200, envelope(action + "Response", msg_id, "<rsp:SendResponse/>")
            if action.endswith("shell/Receive"):
                desired = body.find("rsp:Receive/rsp:DesiredStream", NS)
                cid = desired.get("CommandId") if desired is not None else None
                with emu.lock:
                    recv_cmd = commands.get(cid or "")
                if recv_cmd is None:
                    return 500, fault(msg_id, "The command was not found.", 2150858843)
                if recv_cmd.result is None:
                    recv_cmd.wake.wait(operation_timeout(root))
                    recv_cmd.wake.clear()
                with emu.lock:
                    result = recv_cmd.result
                if result is None:
                    return 500, fault(
                        msg_id,
                        "The WS-Management service cannot complete the operation within the time specified "
                        "in OperationTimeout.",
                        OPERATION_TIMEOUT_FAULT,
                        "w:TimedOut",
                    )
                so, se, rc = result

                def enc(b: bytes) -> str:
                    return base64.b64encode(b).decode()

                return 200, envelope(
                    action + "Response",
                    msg_id,
                    f'<rsp:ReceiveResponse><rsp:Stream Name="stdout" CommandId="{cid}">{enc(so)}</rsp:Stream>'
                    f'<rsp:Stream Name="stderr" CommandId="{cid}">{enc(se)}</rsp:Stream>'
                    f'<rsp:Stream Name="stdout" CommandId="{cid}" End="true"/>'
                    f'<rsp:Stream Name="stderr" CommandId="{cid}" End="true"/>'
                    f'<rsp:CommandState CommandId="{cid}" State="{SHELL_NS}/CommandState/Done">'
                    f"<rsp:ExitCode>{rc}</rsp:ExitCode></rsp:CommandState></rsp:ReceiveResponse>",
                )
            if action.endswith("shell/Signal"):
                signal = body.find("rsp:Signal", NS)
                cid = signal.get("CommandId") if signal is not None else None
                with emu.lock:
                    sig_cmd = commands.pop(cid or "", None)
                    counters["signals"] += 1
                    if sig_cmd is not None:
                        if sig_cmd.result is None:
                            counters["terminated_running"] += 1
                        sig_cmd.terminated = True
                        sig_cmd.result = sig_cmd.result or (b"", b"", 1067)  # ERROR_PROCESS_ABORTED
                        sig_cmd.wake.set()
                return 200, envelope(action + "Response", msg_id, "<rsp:SignalResponse/>")
            if action.endswith("transfer/Delete"):
                with emu.lock:
                    gone = emu.shells.pop(shell_id or "", {})
                    counters["shells_deleted"] += 1
                    for leftover in gone.values():
                        if leftover.result is None:
                            counters["terminated_running"] += 1
                            leftover.result = (b"", b"", 1067)
                        leftover.wake.set()
                return 200, envelope(action + "Response", msg_id)
            return 500, fault(msg_id, f"The action {action} is not supported by the emulator.", 2150858770)

    return Handler


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--http", type=int, default=15985)
    ap.add_argument("--https", type=int, default=15986)
    ap.add_argument("--cert")
    ap.add_argument("--key")
    ap.add_argument("--user-file", required=True)
    ap.add_argument("--password-file", required=True)
    ap.add_argument("--token-file", required=True)
    args = ap.parse_args()

    def read(p: str) -> str:
        return Path(p).read_text(encoding="utf-8").strip()

    emu = Emulator(read(args.user_file), read(args.password_file), read(args.token_file))
    handler = make_handler(emu)
    servers = []
    if args.http:
        servers.append(ThreadingHTTPServer(("127.0.0.1", args.http), handler))
    if args.https and args.cert and args.key:
        tls = ThreadingHTTPServer(("127.0.0.1", args.https), handler)
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        ctx.load_cert_chain(args.cert, args.key)
        tls.socket = ctx.wrap_socket(tls.socket, server_side=True)
        servers.append(tls)
    for srv in servers:
        srv.daemon_threads = True
        threading.Thread(target=srv.serve_forever, daemon=True).start()
    print(f"winrm emulator listening on {[s.server_address for s in servers]}", flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
