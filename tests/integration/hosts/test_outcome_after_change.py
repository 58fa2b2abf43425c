"""A host action that changed something and then failed is never audited as "nothing applied".

The audit records a failed state-changing step as outcome ``failure`` when the connector says
nothing was applied, ``unknown`` when it may have been (``ConnectorError.outcome_unknown``,
docs/architecture.md). Three SSH actions failed *after* their change without saying so:

* ``service_restart``: the restart ran (the daemon was stopped and started), then the state
  read said not running (now, or ``restart_settle_seconds`` later) — audited as ``failure``;
* ``disk_cleanup``: find deleted files, then could not delete one — ``cleanup_incomplete``,
  audited as ``failure`` although the message counted the files removed;
* ``print_queue_clear``: ``cancel -a`` succeeded, then the listing after it failed.

An auditor looking for every change to a host did not find these. Run against the lab sshd
(the lab's ``flakyd`` dies a second after each start) and through the runner for the audit.
"""

from __future__ import annotations

import json
import os
import shutil
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
import yaml

from connectors.base import ConnectorError, Rejected
from runner.api import open_app
from runner.settings import Settings
from tests.integration.hosts.helpers import REPO, SVC_LAB, ssh_connector


def test_a_restart_that_did_not_hold_is_outcome_unknown(lab_hosts: None) -> None:
    conn = ssh_connector(allowed_services=["flakyd"], restart_settle_seconds=2.0)
    try:
        with pytest.raises(Rejected) as info:
            conn.run("service_restart", {"service": "flakyd"}, timeout=20)
    finally:
        conn.close()
    assert info.value.reason == "not_running"
    assert info.value.outcome_unknown is True  # it was restarted: never "nothing was applied"


def test_a_refused_or_unknown_service_stays_a_plain_failure(lab_hosts: None) -> None:
    conn = ssh_connector(allowed_services=["ghost"])
    try:
        with pytest.raises(ConnectorError) as info:
            conn.run("service_restart", {"service": "ghost"}, timeout=20)
    finally:
        conn.close()
    assert info.value.reason == "not_found" and info.value.outcome_unknown is False


def _old_file(path: Path, owner: str = "svc-firstline") -> None:
    path.write_bytes(b"x" * 100)
    stamp = time.time() - 30 * 86400
    os.utime(path, (stamp, stamp))
    shutil.chown(path, owner, owner)


def test_a_cleanup_that_removed_files_then_failed_is_outcome_unknown(lab_hosts: None) -> None:
    folder = SVC_LAB / "cache" / f"partial-{uuid.uuid4().hex[:8]}"
    locked = folder / "locked"
    locked.mkdir(parents=True)
    shutil.chown(folder, "svc-firstline", "svc-firstline")
    os.chmod(locked, 0o755)  # root's: svc-firstline cannot delete in it
    _old_file(folder / "old.log")
    _old_file(locked / "stuck.log", owner="root")
    conn = ssh_connector()
    try:
        with pytest.raises(Rejected) as info:
            conn.run("disk_cleanup", {"path": str(SVC_LAB / "cache")}, timeout=30)
        assert info.value.reason == "cleanup_incomplete"
        assert not (folder / "old.log").exists()  # this one went
        assert info.value.outcome_unknown is True
    finally:
        conn.close()
        shutil.rmtree(folder, ignore_errors=True)


def _inventory_with_flakyd(tmp_path: Path) -> Path:
    """The lab inventory, secrets by absolute path, with a service choice for flakyd."""
    text = (REPO / "lab" / "inventory.yaml").read_text().replace("../var/lab/", f"{REPO}/var/lab/")
    inv: dict[str, Any] = yaml.safe_load(text)
    inv["targets"]["print-01"]["allowed_services"] = [*inv["targets"]["print-01"]["allowed_services"], "flakyd"]
    inv["choices"]["services"]["lab-flaky"] = {
        "label": "Lab daemon that dies after its start",
        "target": "print-01",
        "service": "flakyd",
        "kind": "linux",
    }
    path = tmp_path / "inventory.yaml"
    path.write_text(yaml.safe_dump(inv, sort_keys=False))
    return path


def test_the_audit_says_unknown_for_a_restart_that_did_not_hold(lab_hosts: None, lab_settings: Settings) -> None:
    settings = lab_settings.model_copy(update={"inventory": _inventory_with_flakyd(lab_settings.audit_key_file.parent)})
    app = open_app(settings)
    try:
        outcome = app.run("service-restart", {"service": "lab-flaky"}, requester="agent-1", roles={"agent"})
        assert outcome.state == "escalated", outcome.message
        events = [
            e
            for e in map(json.loads, app.export_audit("jsonl"))
            if e.get("ticket") == outcome.ticket_number and e["action"] == "ssh.service_restart"
        ]
        assert [e["outcome"] for e in events] == ["unknown"]  # before: "failure" (nothing applied)
        assert events[0]["detail"]["reason"] == "not_running"
        assert app.verify_audit().ok
    finally:
        app.close()
