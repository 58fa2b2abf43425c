"""known_hosts read as OpenSSH reads it (issue 7, item 12): markers, hashes, patterns, errors."""

from __future__ import annotations

import base64
import struct
from typing import Any

import paramiko
import pytest
from cryptography.hazmat.primitives.asymmetric import ed25519
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from connectors.base import ConnectorError
from connectors.known_hosts import KnownHosts, KnownHostsError, host_key_algorithms, lookup_name
from connectors.ssh import SshConnector, SshTargetConfig


def ed_key() -> paramiko.PKey:
    line = ed25519.Ed25519PrivateKey.generate().public_key().public_bytes(Encoding.OpenSSH, PublicFormat.OpenSSH)
    kind, b64 = line.decode().split()[:2]
    return paramiko.PKey.from_type_string(kind, base64.b64decode(b64))


def text(key: paramiko.PKey) -> str:
    return f"{key.get_name()} {key.get_base64()}"


HOST = ed_key()
OTHER = ed_key()
ECDSA = paramiko.ECDSAKey.generate()


def check(known: str, address: str = "127.0.0.1", port: int = 2222) -> Any:
    return KnownHosts.parse(known).for_host(address, port)


def _ssh_string(data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + data


# -- what is trusted ----------------------------------------------------------------------------
def test_the_lab_shape_plain_bracketed_port_entry() -> None:
    c = check(f"[127.0.0.1]:2222 {text(HOST)}\n")
    assert c.name == "[127.0.0.1]:2222"
    assert c.verdict(HOST) == "trusted"
    assert check(f"[127.0.0.1]:2222 {text(HOST)}\n", port=2223).verdict(HOST) == "unknown"


def test_port_22_is_looked_up_without_brackets_as_openssh_does() -> None:
    assert lookup_name("Host.Example.ORG", 22) == "host.example.org"
    assert check(f"host.example.org {text(HOST)}", "host.example.org", 22).verdict(HOST) == "trusted"
    # "[host]:22" is never the lookup name for port 22 (OpenSSH put_host_port)
    assert check(f"[host.example.org]:22 {text(HOST)}", "host.example.org", 22).verdict(HOST) == "unknown"


@pytest.mark.parametrize(
    ("patterns", "address", "port", "trusted"),
    [
        ("*.example.org", "print-01.example.org", 22, True),
        ("*.example.org", "example.org", 22, False),
        ("print-0?.example.org", "print-07.example.org", 22, True),
        ("print-0?.example.org", "print-10.example.org", 22, False),
        ("[*.example.org]:2222", "print-01.example.org", 2222, True),
        ("[*.example.org]:2222", "print-01.example.org", 22, False),
        ("*.example.org,!secret.example.org", "secret.example.org", 22, False),
        ("*.example.org,!secret.example.org", "open.example.org", 22, True),
        ("!secret.example.org,*", "secret.example.org", 22, False),
        ("a.example.org,b.example.org,[127.0.0.1]:2222", "127.0.0.1", 2222, True),
        ("PRINT-01.Example.Org", "print-01.example.org", 22, True),
        ("print-01.example.org", "PRINT-01.EXAMPLE.ORG", 22, True),
        ("192.0.2.*", "192.0.2.15", 22, True),
        ("192.0.2.*", "192.0.20.1", 22, False),
        ("*", "anything", 2200, True),
    ],
)
def test_host_patterns_wildcards_negation_and_lists(patterns: str, address: str, port: int, trusted: bool) -> None:
    verdict = check(f"{patterns} {text(HOST)}", address, port).verdict(HOST)
    assert verdict == ("trusted" if trusted else "unknown")


@pytest.mark.parametrize(("address", "port"), [("10.0.0.5", 22), ("10.0.0.5", 2200), ("Print-01.Example.org", 22)])
def test_hashed_host_names(address: str, port: int) -> None:
    hashed = paramiko.HostKeys.hash_host(lookup_name(address, port))
    assert check(f"{hashed} {text(HOST)}", address, port).verdict(HOST) == "trusted"
    assert check(f"{hashed} {text(HOST)}", address, port + 1).verdict(HOST) == "unknown"
    assert check(f"{hashed} {text(HOST)}", "10.0.0.6", port).verdict(HOST) == "unknown"


def test_comments_blank_lines_tabs_crlf_bom_and_trailing_comments_are_read() -> None:
    known = (
        "\ufeff# managed by config management\r\n"
        "\r\n"
        "   # indented comment\n"
        f"[127.0.0.1]:2222\t{HOST.get_name()}  {HOST.get_base64()}   root@build-host extra words\r\n"
    )
    assert check(known).verdict(HOST) == "trusted"


def test_several_keys_of_one_type_for_one_host_are_all_trusted() -> None:
    """OpenSSH allows it (key rotation); paramiko's own store keeps one key per type."""
    c = check(f"[127.0.0.1]:2222 {text(OTHER)}\n[127.0.0.1]:2222 {text(HOST)}\n")
    assert c.verdict(HOST) == c.verdict(OTHER) == "trusted"


# -- markers --------------------------------------------------------------------------------------
def test_a_cert_authority_line_is_skipped_and_never_grants_trust() -> None:
    known = f"@cert-authority *.example.org,[127.0.0.1]:2222 {text(OTHER)}\n[127.0.0.1]:2222 {text(HOST)}\n"
    c = check(known)
    assert c.verdict(HOST) == "trusted"
    assert c.verdict(OTHER) == "changed", "the CA key itself is not a host key"
    assert c.cert_authorities == 1
    only_ca = check(f"@cert-authority * {text(HOST)}\n")
    assert only_ca.verdict(HOST) == "unknown" and only_ca.cert_authorities == 1


def test_a_revoked_key_is_refused_even_when_also_listed_as_trusted() -> None:
    for known in (
        f"[127.0.0.1]:2222 {text(HOST)}\n@revoked [127.0.0.1]:2222 {text(HOST)}\n",
        f"@revoked * {text(HOST)}\n[127.0.0.1]:2222 {text(HOST)}\n",
        # stricter than OpenSSH: a revoked key is refused for every host of the file
        f"@revoked other.example.org {text(HOST)}\n[127.0.0.1]:2222 {text(HOST)}\n",
        f"@revoked {paramiko.HostKeys.hash_host('elsewhere')} {text(HOST)}\n[127.0.0.1]:2222 {text(HOST)}\n",
    ):
        c = check(known)
        assert c.verdict(HOST) == "revoked", known
        assert HOST.asbytes() not in {k.asbytes() for k in c.trusted}


def test_revoking_one_key_leaves_the_others_trusted() -> None:
    c = check(f"[127.0.0.1]:2222 {text(HOST)}\n[127.0.0.1]:2222 {text(ECDSA)}\n@revoked * {text(ECDSA)}\n")
    assert c.verdict(HOST) == "trusted" and c.verdict(ECDSA) == "revoked"


def test_a_key_of_an_unsupported_type_is_skipped_but_still_counts_as_revoked() -> None:
    sk_blob = _ssh_string(b"sk-ssh-ed25519@openssh.com") + _ssh_string(b"\x01" * 32) + _ssh_string(b"ssh:")
    sk = f"sk-ssh-ed25519@openssh.com {base64.b64encode(sk_blob).decode()}"
    dss_blob = _ssh_string(b"ssh-dss") + b"".join(_ssh_string(b"\x01" * 20) for _ in range(4))
    dss = f"ssh-dss {base64.b64encode(dss_blob).decode()}"
    kh = KnownHosts.parse(f"[127.0.0.1]:2222 {sk}\n[127.0.0.1]:2222 {dss}\n@revoked * {sk}\n")
    assert kh.for_host("127.0.0.1", 2222).trusted == ()
    assert sk_blob in kh.for_host("127.0.0.1", 2222).revoked


# -- verdicts -----------------------------------------------------------------------------------------
def test_a_different_key_of_a_known_type_is_changed_and_a_new_type_is_unknown() -> None:
    c = check(f"[127.0.0.1]:2222 {text(HOST)}\n")
    assert c.verdict(OTHER) == "changed"
    assert c.verdict(ECDSA) == "unknown"
    assert check("").verdict(HOST) == "unknown"


def test_trusted_types_are_offered_first_rsa_as_sha2() -> None:
    rsa = paramiko.RSAKey.generate(1024)
    assert host_key_algorithms([ECDSA, rsa, HOST]) == [
        "ecdsa-sha2-nistp256",
        "rsa-sha2-512",
        "rsa-sha2-256",
        "ssh-rsa",
        "ssh-ed25519",
    ]


# -- what cannot be read is an error naming the line ----------------------------------------------------
BAD_LINES = {
    "too few fields": "garbage line",
    "marker only": "@revoked",
    "marker without key": f"@cert-authority *.example.org {HOST.get_name()}",
    "unknown marker": f"@trusted * {text(HOST)}",
    "marker in the wrong case": f"@Revoked * {text(HOST)}",
    "bad base64": "[127.0.0.1]:2222 ssh-ed25519 AAAA!!notbase64",
    "truncated base64": f"[127.0.0.1]:2222 ssh-ed25519 {HOST.get_base64()[:-3]}",
    "key of another type": f"[127.0.0.1]:2222 ssh-rsa {HOST.get_base64()}",
    "key data paramiko refuses": "[127.0.0.1]:2222 ssh-ed25519 "
    + base64.b64encode(_ssh_string(b"ssh-ed25519") + _ssh_string(b"\x01\x02\x03")).decode(),
    "ssh protocol 1 key": "[127.0.0.1]:2222 2048 65537 1234567890123456789",
    "malformed hash": f"|1|abc {text(HOST)}",
    "hash not base64": f"|1|!!!!|????  {text(HOST)}",
    "hash of the wrong size": f"|1|{base64.b64encode(b'x' * 20).decode()}|eQ== {text(HOST)}",
    "hash in a list": f"a.example.org,|1|x|y {text(HOST)}",
    "empty negation": f"!,a.example.org {text(HOST)}",
}


@pytest.mark.parametrize("line", BAD_LINES.values(), ids=BAD_LINES.keys())
def test_a_line_that_cannot_be_read_is_an_error_naming_the_line(line: str) -> None:
    known = f"# header\n[127.0.0.1]:2222 {text(HOST)}\n\n{line}\n"
    with pytest.raises(KnownHostsError, match=r"^line 4: ") as info:
        KnownHosts.parse(known)
    assert HOST.get_base64() not in str(info.value)


# -- the connector turns every problem into a configuration error naming the setting ----------------------
CFG: dict[str, Any] = {
    "connector": "ssh",
    "address": "192.0.2.1",  # TEST-NET: the known_hosts problem stops the connection before any packet
    "username": "svc-firstline",
    "private_key": {"env": "UNUSED"},
    "known_hosts": {"file": "/srv/secret-dir/known_hosts"},
}


def _connector(resolver: Any) -> SshConnector:
    return SshConnector("print-01", SshTargetConfig.model_validate(CFG), resolver)


class FakeConfigError(Exception):
    """Stands in for runner.errors.ConfigError as the secret store raises it."""


def _missing(ref: Any) -> str:
    try:
        open("/nonexistent/known_hosts", encoding="utf-8").close()
    except OSError as exc:
        raise FakeConfigError("secret file /srv/secret-dir/known_hosts cannot be read: No such file") from exc
    raise AssertionError


def _not_utf8(ref: Any) -> str:
    return b"\xff\xfe[127.0.0.1]".decode("utf-8")


@pytest.mark.parametrize(
    ("resolver", "words"),
    [
        (_missing, "cannot be read (the file cannot be read: No such file or directory)"),
        (_not_utf8, "cannot be read (the file is not UTF-8 text)"),
        (lambda ref: f"@cert-authority {HOST.get_name()}\n", "cannot be used: line 1: "),
        (
            lambda ref: f"* ssh-ed25519 {HOST.get_base64()[:8]}*{HOST.get_base64()[8:]}\n",
            "line 1: the ssh-ed25519 key is not",
        ),
    ],
)
def test_the_connector_reports_an_unusable_known_hosts_as_a_config_error(resolver: Any, words: str) -> None:
    conn = _connector(resolver)
    with pytest.raises(ConnectorError) as info:
        conn.run("print_queue_list", {"queue": "office-1"}, timeout=5)
    err = info.value
    assert err.reason == "config_error" and not err.transient
    assert "known_hosts setting of target print-01" in str(err) and words in str(err)
    assert "/srv/secret-dir" not in str(err), "no server path in the message"
    assert conn.pool.connects == 0
