"""The winrm connector without a network: fixed scripts, parameter encoding, CLIXML, config."""

from __future__ import annotations

import base64
import json
import re
import ssl
from typing import Any

import pytest
from pydantic import ValidationError

from connectors.base import ConnectorError, InvalidInput, Rejected
from connectors.winrm import WinrmConnector, WinrmTargetConfig, clixml_message, tls_error
from connectors.winrm_scripts import PARAMS, SCRIPTS, encode_command, encode_params, script_sha256

BASE: dict[str, Any] = {
    "connector": "winrm",
    "endpoint": "https://192.0.2.1:5986/wsman",  # TEST-NET: never contacted
    "transport": "ntlm",
    "username": "CORP\\svc-firstline",
    "password": {"env": "UNUSED"},
    "allowed_services": ["Spooler", "W32Time"],
    "cleanup_paths": ["C:\\Temp\\Firstline"],
}


def make(**over: Any) -> WinrmConnector:
    def no_secrets(ref: Any) -> str:
        raise AssertionError("a refused input must not even resolve credentials")

    return WinrmConnector("print-win-01", WinrmTargetConfig.model_validate({**BASE, **over}), no_secrets)


def test_every_action_except_spooler_restart_has_a_script_with_its_params() -> None:
    conn_actions = set(WinrmConnector.actions)
    assert set(SCRIPTS) == conn_actions == set(PARAMS)
    for name, script in SCRIPTS.items():
        block = re.search(r"param\((.*?)\)\n", script, flags=re.S)
        assert block is not None, name
        for p in PARAMS[name]:
            assert f"${p.name}" in block.group(1), (name, p.name)


def test_scripts_read_values_only_from_stdin_and_bind_them_as_parameters() -> None:
    for name, script in SCRIPTS.items():
        assert script.startswith(f"# firstline-script: {name}/1\n")
        assert "[Console]::In.ReadLine()" in script
        assert "& $FlBody @FlArgs" in script
        assert "Invoke-Expression" not in script and "iex " not in script.lower()
        assert "{" + "queue" + "}" not in script.lower(), "no str.format placeholders left"


def test_the_command_line_is_the_same_whatever_the_values() -> None:
    """Values go to stdin; the -EncodedCommand text is a constant per action."""
    command = encode_command(SCRIPTS["print_queue_clear"])
    assert script_sha256(base64.b64decode(command).decode("utf-16-le")) == script_sha256(SCRIPTS["print_queue_clear"])
    assert "Stop-Computer" not in base64.b64decode(command).decode("utf-16-le")


@pytest.mark.parametrize("value", ["'; Stop-Computer;'", "$(Stop-Computer)", "`n", 'a"b', "ünïcødé"])
def test_params_are_base64_json_on_one_line(value: str) -> None:
    line = encode_params({"Queue": value})
    assert line.endswith("\r\n") and "\n" not in line[:-2]
    assert re.fullmatch(r"[A-Za-z0-9+/=]+", line.strip())
    assert json.loads(base64.b64decode(line)) == {"Queue": value}


def test_plain_http_is_refused_unless_explicitly_allowed() -> None:
    with pytest.raises(ValidationError, match="plain HTTP"):
        WinrmTargetConfig.model_validate({**BASE, "endpoint": "http://192.0.2.1:5985/wsman"})
    cfg = WinrmTargetConfig.model_validate(
        {**BASE, "endpoint": "http://192.0.2.1:5985/wsman", "allow_insecure_http": True}
    )
    assert cfg.allow_insecure_http


def test_certificate_validation_is_the_default() -> None:
    assert WinrmTargetConfig.model_validate(BASE).server_cert_validation == "validate"


def test_password_transports_need_a_password() -> None:
    with pytest.raises(ValidationError, match="needs a 'password'"):
        WinrmTargetConfig.model_validate({**BASE, "password": None})
    assert WinrmTargetConfig.model_validate({**BASE, "transport": "kerberos", "password": None})


@pytest.mark.parametrize("path", ["C:\\", "C:\\Temp\\..\\Windows", "C:\\Temp\\", "Temp"])
def test_cleanup_paths_must_be_plain_windows_dirs(path: str) -> None:
    with pytest.raises(ValidationError, match="cleanup path"):
        WinrmTargetConfig.model_validate({**BASE, "cleanup_paths": [path]})


HOSTILE = ["'; Stop-Computer;'", "$(Stop-Computer)", "`whoami`", "a\r\nb", "a\x00b", "Spooler*", "x" * 100_000]


@pytest.mark.parametrize("value", HOSTILE, ids=range(len(HOSTILE)))
@pytest.mark.parametrize(
    ("action", "key"),
    [
        ("print_queue_list", "queue"),
        ("print_queue_clear", "queue"),
        ("service_status", "service"),
        ("service_restart", "service"),
        ("disk_usage", "path"),
        ("disk_cleanup", "path"),
    ],
)
def test_hostile_values_are_refused_before_any_request(action: str, key: str, value: str) -> None:
    conn = make()
    with pytest.raises((InvalidInput, Rejected)):
        conn.run(action, {key: value}, timeout=5)
    assert conn.shells_opened == 0


def test_services_off_the_allow_list_are_rejected() -> None:
    with pytest.raises(Rejected) as info:
        make().run("service_restart", {"service": "WinRM"}, timeout=5)
    assert info.value.reason == "not_allow_listed"


CLIXML = (
    '#< CLIXML\r\n<Objs Version="1.1.0.1" xmlns="http://schemas.microsoft.com/powershell/2004/04">'
    '<S S="Error">Get-Service : Cannot find any service with service name &apos;Nope&apos;._x000D__x000A_</S>'
    '<S S="Error">At line:1 char:1_x000D__x000A_</S>'
    '<S S="Error">+ CategoryInfo          : ObjectNotFound: (Nope:String) [Get-Service], '
    "ServiceCommandException_x000D__x000A_</S>"
    '<S S="Error">+ FullyQualifiedErrorId : NoServiceFoundForGivenName_x000D__x000A_</S></Objs>'
)


def test_clixml_becomes_a_plain_message_and_category() -> None:
    message, category = clixml_message(CLIXML)
    assert message == "Get-Service : Cannot find any service with service name 'Nope'."
    assert category == "ObjectNotFound"


def test_plain_stderr_is_kept() -> None:
    assert clixml_message("Access is denied.\r\n") == ("Access is denied.", None)


def test_script_errors_map_to_connector_errors() -> None:
    conn = make()
    assert conn._script_error("service_status", CLIXML, 1).reason == "not_found"
    denied = CLIXML.replace("ObjectNotFound", "PermissionDenied")
    assert conn._script_error("service_restart", denied, 1).reason == "access_denied"
    other = conn._script_error("service_restart", "#< CLIXML\r\n<Objs></Objs>", 1)
    assert isinstance(other, Rejected)


# -- TLS failures: one message per cause, naming the setting ------------------------------------------------------
def _wrapped(code: int, message: str) -> Exception:
    """An OpenSSL verification error wrapped the way urllib3 and requests wrap it."""
    import requests
    import urllib3

    cert = ssl.SSLCertVerificationError(1, f"[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed: {message}")
    cert.verify_code = code
    cert.verify_message = message
    retry = urllib3.exceptions.MaxRetryError(None, "/wsman", urllib3.exceptions.SSLError(cert))  # type: ignore[arg-type]
    return requests.exceptions.SSLError(retry)


@pytest.mark.parametrize(
    ("code", "message", "reason", "setting"),
    [
        (20, "unable to get local issuer certificate", "certificate_untrusted", "'ca_trust'"),
        (19, "self-signed certificate in certificate chain", "certificate_untrusted", "'ca_trust'"),
        (18, "self-signed certificate", "certificate_untrusted", "'ca_trust'"),
        (21, "unable to verify the first certificate", "certificate_untrusted", "'ca_trust'"),
        (62, "Hostname mismatch, certificate is not valid for 'x'.", "certificate_name_mismatch", "'endpoint'"),
        (
            64,
            "IP address mismatch, certificate is not valid for '127.0.0.2'.",
            "certificate_name_mismatch",
            "'endpoint'",
        ),
        (10, "certificate has expired", "certificate_expired", "renewed"),
        (9, "certificate is not yet valid", "certificate_expired", "renewed"),
        (26, "unsupported certificate purpose", "certificate_invalid", "'ca_trust'"),
    ],
)
def test_tls_errors_are_distinct(code: int, message: str, reason: str, setting: str) -> None:
    err = tls_error(_wrapped(code, message), "print-win-01 (https://h:5986/wsman)", "print-win-01")
    assert err.reason == reason
    assert setting in str(err) and message in str(err)


def test_a_tls_error_without_verification_detail_is_generic() -> None:
    import requests

    err = tls_error(requests.exceptions.SSLError("handshake failure"), "w", "print-win-01")
    assert err.reason == "certificate_invalid" and "'endpoint' and 'ca_trust'" in str(err)


@pytest.mark.parametrize(
    ("pem", "ok"),
    [
        ("", False),
        ("not a certificate", False),
        ("-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydA==\n-----END CERTIFICATE-----\n", False),
    ],
)
def test_ca_trust_content_must_hold_a_certificate(pem: str, ok: bool) -> None:
    from connectors.winrm import _holds_certificates

    assert _holds_certificates(pem) is ok


def test_a_ca_trust_that_cannot_be_resolved_is_a_config_error_without_the_path() -> None:
    def missing(ref: Any) -> str:
        try:
            open("/nonexistent/ca.crt", encoding="utf-8").close()
        except OSError as exc:
            raise RuntimeError("secret file /srv/pki/ca.crt cannot be read") from exc
        raise AssertionError

    conn = WinrmConnector(
        "print-win-01", WinrmTargetConfig.model_validate({**BASE, "ca_trust": {"file": "/srv/pki/ca.crt"}}), missing
    )
    with pytest.raises(ConnectorError) as info:
        conn._ca_path()
    assert info.value.reason == "config_error"
    assert "'ca_trust' of target print-win-01 cannot be read" in str(info.value)
    assert "/srv/pki" not in str(info.value)


# -- results are checked before they are believed -----------------------------------------------------------------
def scripted(result: Any, **over: Any) -> WinrmConnector:
    conn = make(allowed_queues=["office-win-1"], **{"restart_settle_seconds": 0, **over})
    conn._run_script = lambda action, params, timeout: result  # type: ignore[method-assign]
    return conn


@pytest.mark.parametrize(
    "result",
    [
        {},
        {"cancelled": "2", "remaining": 0},
        {"cancelled": True, "remaining": 0},
        {"cancelled": -1, "remaining": 0},
        {"cancelled": 1},
        {"cancelled": 1.5, "remaining": 0},
    ],
)
def test_a_clear_result_that_is_not_understood_is_refused(result: dict[str, Any]) -> None:
    with pytest.raises(Rejected) as info:
        scripted(result).run("print_queue_clear", {"queue": "office-win-1"}, timeout=5)
    assert info.value.reason == "unexpected_output"


@pytest.mark.parametrize(
    "result",
    [
        {"jobs": [{"id": 1}], "count": 2},
        {"jobs": "none", "count": 0},
        {"jobs": [{"user": "x"}], "count": 1},
        {"jobs": [], "count": None},
    ],
)
def test_a_list_result_that_is_not_understood_is_refused(result: dict[str, Any]) -> None:
    with pytest.raises(Rejected) as info:
        scripted(result).run("print_queue_list", {"queue": "office-win-1"}, timeout=5)
    assert info.value.reason == "unexpected_output"


def test_a_single_job_unwrapped_by_convertto_json_is_one_job() -> None:
    out = scripted({"jobs": {"id": 4, "user": "CORP\\a"}, "count": 1}).run(
        "print_queue_list", {"queue": "OFFICE-WIN-1"}, timeout=5
    )
    assert out["count"] == 1 and out["jobs"][0]["id"] == 4


def test_clear_reports_changed_and_expect_empty_fails_when_jobs_remain() -> None:
    conn = scripted({"cancelled": 0, "remaining": 0})
    assert conn.run("print_queue_clear", {"queue": "office-win-1"}, timeout=5)["changed"] is False
    conn = scripted({"cancelled": 1, "remaining": 1})
    assert conn.run("print_queue_clear", {"queue": "office-win-1"}, timeout=5)["changed"] is True
    with pytest.raises(Rejected) as info:
        conn.run("print_queue_clear", {"queue": "office-win-1", "expect_empty": True}, timeout=5)
    assert info.value.reason == "jobs_remain"


def test_the_allow_listed_spelling_is_sent() -> None:
    sent: list[dict[str, Any]] = []
    conn = make(allowed_queues=["office-win-1"])

    def run(action: str, params: dict[str, Any], timeout: float) -> dict[str, Any]:
        sent.append(params)
        return {"cancelled": 0, "remaining": 0}

    conn._run_script = run  # type: ignore[method-assign]
    conn.run("print_queue_clear", {"queue": "Office-Win-1"}, timeout=5)
    assert sent == [{"Queue": "office-win-1"}]


@pytest.mark.parametrize(
    "result",
    [
        {"running": "False", "state": "Stopped"},
        {"running": "True", "state": "Running"},
        {"running": 1, "state": "Running"},
        {"running": None, "state": "Running"},
        {"state": "Running"},
        {"running": True},
        {"running": True, "state": 4},
        {"running": True, "state": "Stopped"},
        {"running": False, "state": "Running"},
        {"running": True, "state": ""},
    ],
)
@pytest.mark.parametrize("action", ["service_status", "service_restart"])
def test_a_service_result_that_is_not_understood_is_refused(action: str, result: dict[str, Any]) -> None:
    """Only a JSON boolean that agrees with the state counts: "False" is a non-empty string."""
    with pytest.raises(Rejected) as info:
        scripted(result).run(action, {"service": "Spooler"}, timeout=5)
    assert info.value.reason == "unexpected_output"


def test_a_service_result_that_agrees_is_believed() -> None:
    assert (
        scripted({"running": True, "state": "Running"}).run("service_restart", {"service": "spooler"}, timeout=5)[
            "running"
        ]
        is True
    )
    out = scripted({"running": False, "state": "Stopped"}).run("service_status", {"service": "Spooler"}, timeout=5)
    assert out["running"] is False and out["state"] == "Stopped"
    with pytest.raises(Rejected) as info:
        scripted({"running": False, "state": "Stopped"}).run("service_restart", {"service": "Spooler"}, timeout=5)
    assert info.value.reason == "not_running"


def test_a_service_that_stops_right_after_its_restart_is_not_restarted() -> None:
    """Get-Service again ``restart_settle_seconds`` after Restart-Service: stopped then is
    not_running (the restart looked fine when checked at once)."""
    answers = [{"running": True, "state": "Running"}, {"running": False, "state": "Stopped"}]
    asked: list[str] = []
    conn = make(restart_settle_seconds=0.05)

    def run(action: str, params: dict[str, Any], timeout: float) -> dict[str, Any]:
        asked.append(action)
        return answers[len(asked) - 1]

    conn._run_script = run  # type: ignore[method-assign]
    with pytest.raises(Rejected) as info:
        conn.run("service_restart", {"service": "Spooler"}, timeout=5)
    assert info.value.reason == "not_running" and "stopped again within 0.05 s" in str(info.value)
    assert asked == ["service_restart", "service_status"]
    answers[1] = {"running": True, "state": "Running"}
    asked.clear()
    assert conn.run("service_restart", {"service": "Spooler"}, timeout=5)["changed"] is True
    assert asked == ["service_restart", "service_status"]
