"""The fixed PowerShell scripts of the winrm connector, one per action.

No value is ever written into a script. Each script is a constant that

1. reads one line from stdin: base64 of a UTF-8 JSON object (the action's parameters),
2. decodes it and *splats* it onto a script block with a typed, validated ``param(...)``
   block, so PowerShell's own parameter binder turns the values into typed arguments
   (a value like ``'; Stop-Computer;'`` is just a string that fails ``ValidatePattern``),
3. writes the result as one line of compressed JSON on stdout. Errors stay PowerShell
   errors (``$ErrorActionPreference = 'Stop'``): WinRM returns them as CLIXML on stderr
   with a non-zero exit code, and the connector turns them into plain messages.

Names are matched by Windows itself: ``Get-Printer``/``Get-PrintJob``, ``Get-Service`` and
``Get-Item`` compare printer names, service names and paths without case (the connector's
allow-lists do the same). ``print_queue_clear`` lists the queue again after removing and
counts as cancelled only the jobs that are really gone (by job id).

The command line is ``powershell.exe -NoLogo -NoProfile -NonInteractive -EncodedCommand
<base64 UTF-16LE of the script>``; ``script_sha256`` identifies a script (the lab's
WS-Management emulator recognises the scripts by this hash and never evaluates them).
"""

from __future__ import annotations

import base64
import hashlib
import json
from dataclasses import dataclass
from typing import Any

__all__ = ["NAME_PATTERN", "SCRIPTS", "ScriptParam", "encode_command", "encode_params", "script_sha256"]

NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,127}$"

_PRELUDE = """\
$ErrorActionPreference = 'Stop'
$ProgressPreference = 'SilentlyContinue'
$FlLine = [Console]::In.ReadLine()
$FlJson = [Text.Encoding]::UTF8.GetString([Convert]::FromBase64String($FlLine.Trim()))
$FlArgs = @{}
foreach ($FlP in ($FlJson | ConvertFrom-Json).PSObject.Properties) { $FlArgs[$FlP.Name] = $FlP.Value }
"""
_EPILOGUE = """
& $FlBody @FlArgs | ConvertTo-Json -Compress -Depth 5
"""

_QUEUE_PARAM = f"[Parameter(Mandatory)][ValidatePattern('{NAME_PATTERN}')][string]$Queue"
_SERVICE_PARAM = f"[Parameter(Mandatory)][ValidatePattern('{NAME_PATTERN}')][string]$Service"
_PATH_PARAM = "[Parameter(Mandatory)][ValidateLength(4, 1024)][string]$Path"

_JOBS = """\
  $jobs = @(Get-PrintJob -PrinterName $Queue | ForEach-Object {
    [ordered]@{ id = [int]$_.Id; user = [string]$_.UserName; document = [string]$_.DocumentName;
                status = [string]$_.JobStatus; size = [long]$_.Size }
  })
"""

_BODIES: dict[str, str] = {
    "print_queue_list": f"""\
$FlBody = {{
  param({_QUEUE_PARAM})
  $null = Get-Printer -Name $Queue
{_JOBS}  [ordered]@{{ queue = $Queue; jobs = $jobs; count = $jobs.Count }}
}}""",
    "print_queue_clear": f"""\
$FlBody = {{
  param({_QUEUE_PARAM})
  $null = Get-Printer -Name $Queue
  $before = @(Get-PrintJob -PrinterName $Queue)
  foreach ($job in $before) {{ Remove-PrintJob -InputObject $job -ErrorAction SilentlyContinue }}
  $after = @(Get-PrintJob -PrinterName $Queue)
  $left = @($after | ForEach-Object {{ $_.Id }})
  $gone = @($before | Where-Object {{ $left -notcontains $_.Id }}).Count
  [ordered]@{{ queue = $Queue; cancelled = $gone; remaining = $after.Count }}
}}""",
    "spooler_restart": """\
$FlBody = {
  param()
  Restart-Service -Name 'Spooler' -Force
  $s = Get-Service -Name 'Spooler'
  [ordered]@{ service = 'Spooler'; running = ($s.Status -eq 'Running'); state = [string]$s.Status }
}""",
    "service_status": f"""\
$FlBody = {{
  param({_SERVICE_PARAM})
  $s = Get-Service -Name $Service
  [ordered]@{{ service = [string]$s.Name; running = ($s.Status -eq 'Running'); state = [string]$s.Status }}
}}""",
    "service_restart": f"""\
$FlBody = {{
  param({_SERVICE_PARAM})
  $was = ((Get-Service -Name $Service).Status -eq 'Running')
  Restart-Service -Name $Service -Force
  $s = Get-Service -Name $Service
  [ordered]@{{ service = [string]$s.Name; running = ($s.Status -eq 'Running'); state = [string]$s.Status;
              was_running = $was }}
}}""",
    "disk_usage": f"""\
$FlBody = {{
  param({_PATH_PARAM})
  $item = Get-Item -LiteralPath $Path -Force
  $drive = New-Object System.IO.DriveInfo ([System.IO.Path]::GetPathRoot($item.FullName))
  $used = $drive.TotalSize - $drive.TotalFreeSpace
  [ordered]@{{ path = $Path; total_bytes = $drive.TotalSize; used_bytes = $used;
              free_bytes = $drive.AvailableFreeSpace;
              used_percent = [math]::Round(100.0 * $used / [math]::Max(1, $drive.TotalSize), 1) }}
}}""",
    # Walks the tree itself and skips every reparse point (symlink, junction), so nothing
    # outside the allow-listed directory can be reached; the directory itself must not be one.
    "disk_cleanup": f"""\
$FlBody = {{
  param({_PATH_PARAM}, [Parameter(Mandatory)][ValidateRange(0, 3650)][int]$OlderThanDays)
  $root = Get-Item -LiteralPath $Path -Force
  if (-not $root.PSIsContainer -or ($root.Attributes -band [IO.FileAttributes]::ReparsePoint) -or
      $root.FullName.TrimEnd('\\') -ne $Path) {{
    throw [System.UnauthorizedAccessException]::new("Cleanup path '$Path' is not a plain directory.")
  }}
  $limit = (Get-Date).ToUniversalTime().AddDays(-$OlderThanDays)
  $freed = [long]0; $removed = 0
  $stack = New-Object System.Collections.Stack
  $stack.Push($root)
  while ($stack.Count -gt 0) {{
    foreach ($entry in $stack.Pop().EnumerateFileSystemInfos()) {{
      if ($entry.Attributes -band [IO.FileAttributes]::ReparsePoint) {{ continue }}
      if ($entry -is [IO.DirectoryInfo]) {{ $stack.Push($entry); continue }}
      if ($entry.LastWriteTimeUtc -lt $limit) {{
        $size = $entry.Length
        Remove-Item -LiteralPath $entry.FullName -Force
        $freed += $size; $removed += 1
      }}
    }}
  }}
  [ordered]@{{ path = $Path; freed_bytes = $freed; files_removed = $removed; older_than_days = $OlderThanDays }}
}}""",
}


@dataclass(frozen=True)
class ScriptParam:
    """One parameter of a script's ``param(...)`` block, as PowerShell binds it."""

    name: str
    type: str  # "string" | "int"
    pattern: str | None = None
    min_length: int | None = None
    max_length: int | None = None
    min_value: int | None = None
    max_value: int | None = None


PARAMS: dict[str, tuple[ScriptParam, ...]] = {
    "print_queue_list": (ScriptParam("Queue", "string", NAME_PATTERN),),
    "print_queue_clear": (ScriptParam("Queue", "string", NAME_PATTERN),),
    "spooler_restart": (),
    "service_status": (ScriptParam("Service", "string", NAME_PATTERN),),
    "service_restart": (ScriptParam("Service", "string", NAME_PATTERN),),
    "disk_usage": (ScriptParam("Path", "string", min_length=4, max_length=1024),),
    "disk_cleanup": (
        ScriptParam("Path", "string", min_length=4, max_length=1024),
        ScriptParam("OlderThanDays", "int", min_value=0, max_value=3650),
    ),
}

SCRIPTS: dict[str, str] = {
    name: f"# firstline-script: {name}/1\n{_PRELUDE}{body}{_EPILOGUE}" for name, body in _BODIES.items()
}


def script_sha256(script: str) -> str:
    return hashlib.sha256(script.encode("utf-8")).hexdigest()


def encode_command(script: str) -> str:
    """``-EncodedCommand`` form: base64 of the UTF-16LE script text."""
    return base64.b64encode(script.encode("utf-16-le")).decode("ascii")


def encode_params(params: dict[str, Any]) -> str:
    """The single stdin line: base64 of the UTF-8 JSON parameters (nothing a console would mangle)."""
    raw = json.dumps(params, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    return base64.b64encode(raw).decode("ascii") + "\r\n"
