"""Firstline overhead on a CUPS printer-queue clear over SSH: raw paramiko vs a full run.

All measured in this one run against the lab sshd + CUPS (lab/sshd.sh, lab/cups.sh), N
iterations each; before every iteration 3 held jobs are put in the queue (not timed):

  raw-cancel     one `cancel -a office-1` exec on an open paramiko connection (TCP_NODELAY)
  raw-runbook    the same remote commands the runbook issues, as plain execs on that open
                 connection: lpstat (list), lpstat + cancel -a + lpstat (clear), lpstat
                 (confirm) — 5 execs
  connector      SshConnector.run for the 3 steps (print_queue_list, print_queue_clear,
                 print_queue_list expect_empty) on its pooled connection: adds argv
                 checks, the remote launcher (setsid + pgid), output caps, parsing
  full-run       Firstline.run("printer-queue-clear"): policy + vetting + parameters +
                 ticket + step rows + hash-chained audit events + the connector calls

Raw execs are timed twice, on a socket with TCP_NODELAY only and with TCP_QUICKACK re-armed
(what the connector's socket does); the ratios use the faster of the two.
Usage: .venv/bin/python bench/ssh_overhead.py [N]
"""

from __future__ import annotations

import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import paramiko

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from connectors.registry import registry  # noqa: E402
from connectors.ssh import SshConnector  # noqa: E402
from connectors.ssh_exec import _open_socket, parse_known_hosts  # noqa: E402
from runner.api import open_app  # noqa: E402
from runner.inventory import load_inventory  # noqa: E402
from runner.secrets import SecretStore  # noqa: E402
from runner.settings import Settings  # noqa: E402

QUEUE = "office-1"
SOCK = REPO / "var" / "lab" / "cups" / "run" / "cups.sock"
SSHD = REPO / "var" / "lab" / "sshd"


def hold_jobs(n: int = 3) -> None:
    env = dict(os.environ, CUPS_SERVER=str(SOCK))
    for _ in range(n):
        subprocess.run(["lp", "-d", QUEUE, "-H", "hold"], input=b"x\n", env=env, check=True, capture_output=True)


def raw_client(quickack: bool) -> paramiko.SSHClient:
    client = paramiko.SSHClient()
    # The lab file carries @cert-authority/@revoked lines that paramiko's own loader cannot read.
    for key in parse_known_hosts((SSHD / "known_hosts").read_text()).for_host("127.0.0.1", 2222).trusted:
        client.get_host_keys().add("[127.0.0.1]:2222", key.get_name(), key)
    client.set_missing_host_key_policy(paramiko.RejectPolicy())
    if quickack:
        sock = _open_socket("127.0.0.1", 2222, 5)
    else:
        sock = socket.create_connection(("127.0.0.1", 2222), timeout=5)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    client.connect(
        "127.0.0.1",
        port=2222,
        username="svc-firstline",
        key_filename=str(SSHD / "secrets" / "client_key"),
        sock=sock,
        look_for_keys=False,
        allow_agent=False,
    )
    return client


def raw_exec(client: paramiko.SSHClient, command: str) -> int:
    _, out, _ = client.exec_command(command, timeout=15)
    out.read()
    return out.channel.recv_exit_status()


def measure(n: int, prepare: Callable[[], None], modes: dict[str, Callable[[], None]]) -> dict[str, list[float]]:
    """Round-robin over the modes, so that load from other processes hits all of them alike."""
    samples: dict[str, list[float]] = {name: [] for name in modes}
    for work in modes.values():
        prepare()
        work()  # warm-up (connections, imports, first statement compilation)
    for _ in range(n):
        for name, work in modes.items():
            prepare()
            t = time.perf_counter()
            work()
            samples[name].append((time.perf_counter() - t) * 1000)
    return samples


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 30
    for svc in ("sshd", "cups"):
        subprocess.run(["bash", str(REPO / "lab" / f"{svc}.sh"), "start"], check=True, capture_output=True)

    inventory = load_inventory(REPO / "lab" / "inventory.yaml", registry())
    conn = SshConnector("print-01", inventory.target("print-01"), SecretStore(inventory.base_dir))
    clients = {tag: raw_client(tag == "quickack") for tag in ("nodelay", "quickack")}
    tmp = tempfile.TemporaryDirectory()
    settings = Settings(
        environment="test",
        database_url=f"sqlite:///{tmp.name}/ledger.db",
        audit_key_file=Path(tmp.name) / "audit.key",
        log_file=Path(tmp.name) / "firstline.log",
    )
    app = open_app(settings)

    def one_cancel(c: paramiko.SSHClient) -> None:
        raw_exec(c, f"cancel -a {QUEUE}")

    def runbook_cmds(c: paramiko.SSHClient) -> None:
        for cmd in ("lpstat", "lpstat", "cancel -a", "lpstat", "lpstat"):
            raw_exec(c, f"{cmd} -o {QUEUE}" if cmd == "lpstat" else f"{cmd} {QUEUE}")

    def connector_steps() -> None:
        assert conn.run("print_queue_list", {"queue": QUEUE}, timeout=15)["count"] > 0
        assert conn.run("print_queue_clear", {"queue": QUEUE}, timeout=15)["remaining"] == 0
        conn.run("print_queue_list", {"queue": QUEUE, "expect_empty": True}, timeout=15)

    def full_run() -> None:
        outcome = app.run("printer-queue-clear", {"printer": QUEUE}, requester="bench", roles={"agent"})
        assert outcome.state == "resolved", outcome.message

    modes: dict[str, Callable[[], None]] = {}
    for tag, client in clients.items():
        modes[f"raw-cancel ({tag})"] = lambda c=client: one_cancel(c)
        modes[f"raw-runbook ({tag})"] = lambda c=client: runbook_cmds(c)
    modes["connector"] = connector_steps
    modes["full-run"] = full_run
    results = measure(n, hold_jobs, modes)
    for client in clients.values():
        client.close()
    conn.close()
    app.close()
    tmp.cleanup()

    med = {k: statistics.median(v) for k, v in results.items()}
    print(f"printer-queue-clear over SSH, {n} iterations each (3 held jobs per iteration), medians:")
    for name, values in results.items():
        p90 = sorted(values)[int(0.9 * (len(values) - 1))]
        print(f"  {name:24s} {med[name]:8.2f} ms   (p90 {p90:.2f} ms)")
    raw_rb = min(med["raw-runbook (nodelay)"], med["raw-runbook (quickack)"])
    raw_one = min(med["raw-cancel (nodelay)"], med["raw-cancel (quickack)"])
    print(f"  connector / raw-runbook  {med['connector'] / raw_rb:5.2f}x")
    print(f"  full-run  / raw-runbook  {med['full-run'] / raw_rb:5.2f}x   (target <= 2x)")
    print(f"  full-run  / connector    {med['full-run'] / med['connector']:5.2f}x")
    print(f"  full-run  / raw-cancel   {med['full-run'] / raw_one:5.2f}x   (one bare exec, for scale)")


if __name__ == "__main__":
    main()
