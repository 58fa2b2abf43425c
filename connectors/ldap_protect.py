"""Which directory accounts Firstline must never act on, and how to recognise them.

* The bind (service) account of the target itself: recognised by its DN compared as a DN
  (``canonical_dn``: attribute types case-insensitive and OID aliases, values unescaped —
  ``\\6C`` and ``l`` are the same —, case and runs of spaces folded, multi-valued RDNs
  sorted) **and** by identity: ``entryUUID`` (OpenLDAP, RFC 4530) or ``objectSid`` /
  ``objectGUID`` (AD), read from the bind DN's own entry. Either match refuses.
* Active Directory: every account whose token holds a built-in protected group, found by
  well-known SID or RID rather than by name (names are localised): Administrators
  (S-1-5-32-544), Account Operators (548), Server Operators (549), Print Operators (550),
  Backup Operators (551), Replicator (552); and per domain Domain Admins (RID 512),
  Domain Controllers (516), Schema Admins (518), Enterprise Admins (519), Read-only Domain
  Controllers (521), Enterprise Read-only Domain Controllers (498), Key Admins (526),
  Enterprise Key Admins (527) — the AdminSDHolder set, see Microsoft's "Appendix C:
  Protected Accounts and Groups in Active Directory". Membership is read from the
  constructed ``tokenGroups`` attribute (transitive, includes the primary group); where
  the DC does not return it, from ``LDAP_MATCHING_RULE_IN_CHAIN`` (1.2.840.113556.1.4.1941)
  on each protected group plus ``primaryGroupID``. The built-in Administrator (RID 500) and
  ``krbtgt`` (RID 502) and anything with ``adminCount=1`` are privileged too.
* Active Directory, the configured ``admin_groups``: an account the group holds through
  ``member`` (nested), as its primary group, or through a group it holds as primary group
  (``ad_holder_filter``: ``tokenGroups`` against the group's ``objectSid``).
* OpenLDAP: the configured ``protected_accounts`` DNs and every member of the configured
  ``admin_groups``, nested ``groupOfNames`` / ``groupOfUniqueNames`` included (followed
  upwards from the account, at most ``MAX_NESTING`` levels), and a ``posixGroup`` listing
  the account's ``uid`` in ``memberUid`` (RFC 2307; such a group may itself be nested by DN).

A configured admin group that does not exist raises ``GroupMissing`` naming it.
"""

from __future__ import annotations

import re
import struct
from collections.abc import Iterable, Sequence
from functools import lru_cache
from typing import Any

from ldap3 import BASE, SUBTREE, Connection
from ldap3.utils.conv import escape_filter_chars

from connectors.ldap_controls import matched_values

__all__ = [
    "AD_PROTECTION_ATTRIBUTES",
    "BUILTIN_PROTECTED_SIDS",
    "DOMAIN_PROTECTED_RIDS",
    "GroupMissing",
    "ProtectionUnknown",
    "ad_holder_filter",
    "ad_protected",
    "canonical_dn",
    "openldap_admin_member",
    "require_group",
    "same_dn",
    "sid_to_str",
    "tidy_dn",
    "unique_member",
]

MAX_NESTING = 8

BUILTIN_PROTECTED_SIDS = frozenset(f"S-1-5-32-{rid}" for rid in (544, 548, 549, 550, 551, 552))
DOMAIN_PROTECTED_RIDS = frozenset({498, 512, 516, 518, 519, 521, 526, 527})
PROTECTED_ACCOUNT_RIDS = frozenset({500, 502})  # Administrator, krbtgt
IN_CHAIN = "1.2.840.113556.1.4.1941"

# attribute-type OIDs that appear in DNs (RFC 4519), so "2.5.4.3=x" equals "cn=x"
_OID_NAMES = {
    "2.5.4.3": "cn",
    "2.5.4.6": "c",
    "2.5.4.7": "l",
    "2.5.4.8": "st",
    "2.5.4.10": "o",
    "2.5.4.11": "ou",
    "0.9.2342.19200300.100.1.1": "uid",
    "0.9.2342.19200300.100.1.25": "dc",
}
_HEX = "0123456789abcdefABCDEF"


class GroupMissing(Exception):
    """A configured admin group does not exist (fail closed); ``args[0]`` is its DN."""


class ProtectionUnknown(Exception):
    """The directory would not say whether an account is protected (fail closed)."""


def _value(raw: bytes) -> str:
    text = raw.decode("utf-8", "strict")
    return " ".join(text.split()).casefold()


@lru_cache(maxsize=4096)
def canonical_dn(dn: str) -> tuple[tuple[tuple[str, str], ...], ...]:
    """*dn* as comparable RDNs (RFC 4514 parsing); raise ``ValueError`` when malformed.

    Types are lower-cased (``OID.`` prefix and known OIDs mapped to names), values are
    unescaped (``\\xx`` hex pairs, ``\\,``), hex-encoded ``#04..`` values decoded, then
    white-space runs folded and case folded — directory DNs use case-insensitive naming
    attributes (cn, ou, dc, uid) on both OpenLDAP and AD.

    Memoised (a pure function of the string; the tuples it returns are immutable): one
    unlock compares the same few DNs — the account, the bind account, the admin groups —
    about twenty times, and parsing them each time was a tenth of the connector's CPU.
    """
    rdns: list[tuple[tuple[str, str], ...]] = []
    avas: list[tuple[str, str]] = []
    i, n = 0, len(dn)
    if not dn.strip():
        return ()
    while i < n:
        eq = dn.find("=", i)
        if eq < 0:
            raise ValueError("attribute without a value")
        kind = dn[i:eq].strip().lower().removeprefix("oid.")
        if not kind:
            raise ValueError("empty attribute type")
        kind = _OID_NAMES.get(kind, kind)
        i = eq + 1
        while i < n and dn[i] == " ":
            i += 1
        buf = bytearray()
        if i < n and dn[i] == "#":
            j = i + 1
            while j < n and dn[j] in _HEX:
                j += 1
            ber = bytes.fromhex(dn[i + 1 : j])
            # a BER string: tag, short length, content
            buf += ber[2:] if len(ber) >= 2 and ber[1] == len(ber) - 2 else ber
            i = j
            while i < n and dn[i] == " ":
                i += 1
        else:
            while i < n and dn[i] not in ",+;":
                c = dn[i]
                if c == "\\":
                    pair = dn[i + 1 : i + 3]
                    if len(pair) == 2 and all(ch in _HEX for ch in pair):
                        buf.append(int(pair, 16))
                        i += 3
                        continue
                    if i + 1 >= n:
                        raise ValueError("dangling escape")
                    buf += dn[i + 1].encode("utf-8")
                    i += 2
                    continue
                buf += c.encode("utf-8")
                i += 1
        avas.append((kind, _value(bytes(buf))))
        sep = dn[i] if i < n else ""
        i += 1
        if sep != "+":
            rdns.append(tuple(sorted(avas)))
            avas = []
    if avas:
        rdns.append(tuple(sorted(avas)))
    return tuple(rdns)


def tidy_dn(dn: str) -> str:
    """*dn* without the optional spaces around ``,`` ``+`` and ``=`` (ldap3 refuses them).

    Escapes are kept as written; a trailing escaped space (``\\ ``) is kept.
    """
    parts: list[str] = []
    cur, i = "", 0
    while i < len(dn):
        c = dn[i]
        if c == "\\" and i + 1 < len(dn):
            cur += dn[i : i + 2]
            i += 2
            continue
        if c in ",+;":
            parts.append(_tidy_ava(cur))
            parts.append("," if c == ";" else c)
            cur = ""
        else:
            cur += c
        i += 1
    parts.append(_tidy_ava(cur))
    return "".join(parts)


def _tidy_ava(ava: str) -> str:
    kind, sep, value = ava.partition("=")
    value = value.lstrip(" ")
    stripped = value.rstrip(" ")
    if stripped.endswith("\\") and len(stripped) < len(value):  # keep an escaped trailing space
        stripped += " "
    return kind.strip() + sep + stripped


def same_dn(a: str, b: str) -> bool:
    """True when *a* and *b* name the same entry as DNs (False if either is malformed)."""
    try:
        return canonical_dn(a) == canonical_dn(b)
    except (ValueError, UnicodeDecodeError):
        return False


def sid_to_str(raw: bytes) -> str:
    """A binary ``objectSid`` as ``S-1-5-21-...``; raise ``ValueError`` when malformed."""
    if len(raw) < 8:
        raise ValueError("SID too short")
    revision, count = raw[0], raw[1]
    if len(raw) != 8 + 4 * count:
        raise ValueError("SID length does not match its sub-authority count")
    authority = int.from_bytes(raw[2:8], "big")
    subs = struct.unpack(f"<{count}I", raw[8:])
    return "S-" + "-".join(str(x) for x in (revision, authority, *subs))


def _sid_protected(sid: str) -> bool:
    if sid in BUILTIN_PROTECTED_SIDS:
        return True
    parts = sid.split("-")
    # S-1-5-21-a-b-c-RID: a domain's well-known group (any domain of the forest: Enterprise
    # and Schema Admins live in the forest root, whose SID differs from a child domain's)
    if len(parts) == 8 and parts[:4] == ["S", "1", "5", "21"]:
        return int(parts[7]) in DOMAIN_PROTECTED_RIDS
    return False


def _entries(conn: Connection) -> list[dict[str, Any]]:
    return [r for r in conn.response or [] if r.get("type") == "searchResEntry"]


def _raw(entry: dict[str, Any], name: str) -> list[bytes]:
    want = name.lower()
    for key, values in (entry.get("raw_attributes") or {}).items():
        if key == name or key.lower() == want:
            return [bytes(v) for v in values]
    return []


def require_group(conn: Connection, group_dn: str) -> None:
    """Raise ``GroupMissing`` unless *group_dn* exists (a BASE read of no attributes)."""
    conn.search(group_dn, "(objectClass=*)", BASE, attributes=["1.1"])
    code = conn.result.get("result")
    if code in (32, 34) or (code == 0 and not _entries(conn)):  # noSuchObject / invalidDNSyntax
        raise GroupMissing(group_dn)
    if code not in (0, None):
        raise ProtectionUnknown(f"reading admin group failed with result {code}")


def _domain_root(dn: str) -> str:
    """The trailing ``DC=`` components of *dn* (the domain naming context)."""
    parts = [p for p in _split_rdns(dn)]
    tail: list[str] = []
    for rdn in reversed(parts):
        if rdn.strip().lower().startswith("dc="):
            tail.insert(0, rdn.strip())
        else:
            break
    return ",".join(tail)


@lru_cache(maxsize=4096)
def _split_rdns(dn: str) -> tuple[str, ...]:
    """*dn*'s RDNs as written (split at unescaped commas). Memoised as ``canonical_dn``: an
    unlock splits the same account and group DNs each time (a pure function of the string)."""
    out: list[str] = []
    cur, i = "", 0
    while i < len(dn):
        c = dn[i]
        if c == "\\" and i + 1 < len(dn):
            cur += dn[i : i + 2]
            i += 2
            continue
        if c == ",":
            out.append(cur)
            cur = ""
        else:
            cur += c
        i += 1
    out.append(cur)
    return tuple(out)


AD_PROTECTION_ATTRIBUTES = ("objectSid", "primaryGroupID", "tokenGroups", "adminCount")


def _ad_entry(conn: Connection, dn: str, entry: dict[str, Any] | None) -> dict[str, Any]:
    """*entry*, or the account's ``AD_PROTECTION_ATTRIBUTES`` read now (``ProtectionUnknown``: no entry)."""
    if entry is not None:
        return entry
    conn.search(dn, "(objectClass=*)", BASE, attributes=list(AD_PROTECTION_ATTRIBUTES))
    found = _entries(conn)
    if not found:
        raise ProtectionUnknown("the account's SID could not be read")
    return found[0]


def ad_protected(conn: Connection, dn: str, entry: dict[str, Any] | None = None) -> bool:
    """True when the AD account at *dn* is built-in privileged (see the module docstring).

    *entry*: the account as a base search returned it with (at least) the attributes
    ``AD_PROTECTION_ATTRIBUTES`` asked for (``raw_attributes`` is used); without it they
    are read here. Raises ``ProtectionUnknown`` when neither ``tokenGroups`` nor the
    protected groups can be read, so that the caller refuses instead of guessing.
    """
    entry = _ad_entry(conn, dn, entry)
    if any(v.strip() == b"1" for v in _raw(entry, "adminCount")):
        return True
    sids = _raw(entry, "objectSid")
    if not sids:
        raise ProtectionUnknown("the account's SID could not be read")
    own = sid_to_str(sids[0])
    domain_sid, rid = own.rsplit("-", 1)
    if int(rid) in PROTECTED_ACCOUNT_RIDS:
        return True
    primary = _raw(entry, "primaryGroupID")
    if primary and int(primary[0]) in DOMAIN_PROTECTED_RIDS:
        return True
    tokens = _raw(entry, "tokenGroups")
    if tokens:
        return any(_sid_protected(sid_to_str(t)) for t in tokens)
    # No tokenGroups: find the protected groups by SID and ask for transitive membership.
    root = _domain_root(dn)
    wanted = sorted(BUILTIN_PROTECTED_SIDS | {f"{domain_sid}-{r}" for r in DOMAIN_PROTECTED_RIDS})
    conn.search(root, "(|" + "".join(f"(objectSid={s})" for s in wanted) + ")", SUBTREE, attributes=["1.1"])
    groups = [str(e["dn"]) for e in _entries(conn)]
    if not groups:
        raise ProtectionUnknown("the protected groups could not be found")
    who = escape_filter_chars(dn)
    for group in groups:
        conn.search(group, f"(member:{IN_CHAIN}:={who})", BASE, attributes=["1.1"])
        if _entries(conn):
            return True
    return False


def ad_holder_filter(conn: Connection, dn: str, entry: dict[str, Any] | None = None) -> str:
    """A filter that selects, on a BASE search of a group, a group that holds the AD account at *dn*.

    Three ways a group holds an account in AD, all counted: through ``member``, nested
    (``LDAP_MATCHING_RULE_IN_CHAIN``); as its primary group (``primaryGroupID``), which AD
    keeps out of ``member`` altogether — an administrator whose primary group is an admin
    group has no ``member`` link to it; and through a group whose primary members it holds.
    The last two come from the account's ``tokenGroups`` (transitive, the primary group
    included): the group's ``objectSid`` is one of them. Where the DC does not return
    ``tokenGroups``, from ``primaryGroupID``: that group's SID, and ``member`` chains from
    it (found by its SID). *entry* as for ``ad_protected`` (read here when None).
    ``ProtectionUnknown`` when the account's SID cannot be read.
    """
    entry = _ad_entry(conn, dn, entry)
    items = [f"(member:{IN_CHAIN}:={escape_filter_chars(dn)})"]
    sids = sorted({sid_to_str(t) for t in _raw(entry, "tokenGroups") if t})
    if not sids:
        own, primary = _raw(entry, "objectSid"), _raw(entry, "primaryGroupID")
        if not own:
            raise ProtectionUnknown("the account's SID could not be read")
        if primary:
            sid = f"{sid_to_str(own[0]).rsplit('-', 1)[0]}-{int(primary[0])}"
            sids = [sid]
            conn.search(_domain_root(dn), f"(objectSid={sid})", SUBTREE, attributes=["1.1"])
            items += [f"(member:{IN_CHAIN}:={escape_filter_chars(str(e['dn']))})" for e in _entries(conn)]
    items += [f"(objectSid={sid})" for sid in sids]
    return "(|" + "".join(items) + ")"


def _canon_set(dns: Iterable[str]) -> set[tuple[tuple[tuple[str, str], ...], ...]]:
    out = set()
    for dn in dns:
        try:
            out.add(canonical_dn(dn))
        except (ValueError, UnicodeDecodeError):
            continue
    return out


def _common_suffix(dns: Sequence[str]) -> str:
    split = [_split_rdns(d) for d in dns]
    tail: list[str] = []
    for parts in zip(*(list(reversed(s)) for s in split), strict=False):
        if all(same_dn(parts[0], p) for p in parts):
            tail.insert(0, parts[0].strip())
        else:
            break
    return ",".join(tail)


def openldap_admin_member(
    conn: Connection, dn: str, admin_groups: Sequence[str], uids: Sequence[str] = (), gids: Sequence[str] = ()
) -> bool:
    """True when *dn* is a member of an admin group, directly or through nested groups.

    Walks upwards: the groups (``groupOfNames`` ``member`` / ``groupOfUniqueNames``
    ``uniqueMember``, and ``posixGroup`` ``memberUid`` = one of *uids*, the account's ``uid``
    values, RFC 2307, or whose ``gidNumber`` is one of *gids*, the account's primary group)
    that hold *dn*, then the groups that hold those (by DN), at most
    ``MAX_NESTING`` levels, searching under the common suffix of the account and the groups.
    Every configured admin group must exist (``GroupMissing`` otherwise).

    The first level and the existence of the admin groups are one search (see
    ``_first_level``); a server that cannot answer it that way gets the separate reads
    (``require_group`` per group, then the walk) — the same verdict either way.
    """
    if not admin_groups:
        return False
    admin = _canon_set(admin_groups)
    base = _common_suffix([dn, *admin_groups])
    if not base:
        for group in admin_groups:
            require_group(conn, group)
        raise ProtectionUnknown("the account and the admin groups share no suffix to search under")
    first = _first_level(conn, base, dn, admin_groups, uids, gids)
    if first is None:
        for group in admin_groups:
            require_group(conn, group)
        return _walk(conn, base, [dn], _canon_set([dn]), admin, uids=uids, gids=gids)
    holders, present = first
    for group in admin_groups:  # not found by entryDN (or a server without it): read it to be sure
        if not _canon_set([group]) & present:
            require_group(conn, group)
    seen = _canon_set([dn])
    frontier = []
    for group_dn in holders:
        canon = _canon_set([group_dn])
        if canon & admin:
            return True
        if not canon & seen:
            seen |= canon
            frontier.append(group_dn)
    return _walk(conn, base, frontier, seen, admin, levels=MAX_NESTING - 1)


_UID_SUFFIX = re.compile(r"#'[01]*'B$")  # nameAndOptionalUID (uniqueMember)


def unique_member(escaped_dn: str) -> str:
    """Filter items for "``uniqueMember`` names *escaped_dn*", with or without an optional UID.

    ``uniqueMember`` values may carry one (``uid=x,ou=people,...#'0101'B``, RFC 4517
    nameAndOptionalUID); its equality rule then matches only an assertion with the same UID,
    so ``(uniqueMember=DN)`` misses such a member — an administrator listed that way read as
    an ordinary account. slapd's approximate match on ``uniqueMember`` compares the DN alone.
    """
    return f"(uniqueMember={escaped_dn})(uniqueMember~={escaped_dn})"


_unique_member = unique_member
_UNIQUE_NAMES = "groupOfUniqueNames"


MEMBER_UID_RULE = "caseIgnoreIA5Match"  # memberUid is matched without case (``_posix_holds``)


def _posix_holds(uids: Sequence[str], gids: Sequence[str] = ()) -> str:
    """Filter items for "a ``posixGroup`` whose ``memberUid`` is one of *uids*, or whose
    ``gidNumber`` is one of *gids* (the account's primary group, RFC 2307 ``posixAccount``:
    it is not listed in ``memberUid``)" ('' for neither)."""
    if not uids and not gids:
        return ""
    # memberUid is case-exact (RFC 2307); whether "ADMIN1" there names the account "admin1"
    # depends on how the hosts' NSS compares names, so it counts: a protection fails closed
    names = "".join(f"(memberUid:{MEMBER_UID_RULE}:={escape_filter_chars(u)})" for u in uids)
    names += "".join(f"(gidNumber={escape_filter_chars(g)})" for g in gids)
    return f"(&(objectClass=posixGroup)(|{names}))"


def _first_level(
    conn: Connection,
    base: str,
    dn: str,
    admin_groups: Sequence[str],
    uids: Sequence[str] = (),
    gids: Sequence[str] = (),
) -> tuple[list[str], set[tuple[tuple[tuple[str, str], ...], ...]]] | None:
    """(groups holding *dn* directly, canonical DNs of the admin groups found), in one search.

    The filter asks for the groups whose ``member`` / ``uniqueMember`` is *dn* (``unique_member``:
    with or without an optional UID) **or** whose ``entryDN`` (RFC 5020) is an admin group; the
    matched-values control (RFC 3876) makes the server return, of those attributes, only the
    values equal to *dn* (and ``objectClass: groupOfUniqueNames``) — so a returned entry holds
    *dn* when it carries such a value, by the server's own matching rule, as the filter of the
    plain walk decides it. A ``uniqueMember`` value with a UID matches only the approximate
    item and comes back without values: a group of unique names returned so holds *dn* when it
    is not an admin group (nothing else selects it); an admin group returned so is asked once
    more (BASE). A ``posixGroup`` whose ``memberUid`` is one of *uids* holds the account too
    (its matched ``memberUid`` values come back). None (caller falls back to separate reads)
    when the server refuses the search or the control, or returns a value other than *dn* /
    *uids* (the control was not applied).
    """
    who = escape_filter_chars(dn)
    holds = f"(|(member={who}){_unique_member(who)})"
    names = "".join(f"(entryDN={escape_filter_chars(g)})" for g in admin_groups)
    posix = _posix_holds(uids, gids)
    flt = f"(|(&(|(objectClass=groupOfNames)(objectClass=groupOfUniqueNames)){holds}){posix}{names})"
    wanted = [("member", dn), ("uniqueMember", dn), ("objectClass", _UNIQUE_NAMES)]
    wanted += [("memberUid", u) for u in uids] + [("gidNumber", g) for g in gids]
    conn.search(
        base,
        flt,
        SUBTREE,
        attributes=[
            "member",
            "uniqueMember",
            "objectClass",
            *(["memberUid"] if uids else []),
            *(["gidNumber"] if gids else []),
        ],
        dereference_aliases="NEVER",
        controls=[matched_values(wanted, {"memberUid": MEMBER_UID_RULE})],
    )
    if conn.result.get("result") not in (0, None):
        return None
    own, admin = _canon_set([dn]), _canon_set(admin_groups)
    wanted_posix = {u.lower() for u in uids}
    holders: list[str] = []
    ask_again: list[str] = []
    present: set[tuple[tuple[tuple[str, str], ...], ...]] = set()
    for entry in _entries(conn):
        group_dn = str(entry["dn"])
        present |= _canon_set([group_dn]) & admin
        values = _raw(entry, "member") + _raw(entry, "uniqueMember")
        for value in values:
            try:
                text = _UID_SUFFIX.sub("", value.decode("utf-8"))
            except UnicodeDecodeError:
                return None
            if _canon_set([text]) != own:
                return None  # a value the control should have left out: not applied
        classes = {v.decode("utf-8", "replace").lower() for v in _raw(entry, "objectClass")}
        if classes - {_UNIQUE_NAMES.lower()}:
            return None  # an objectClass value the control should have left out: not applied
        posix_values = _raw(entry, "memberUid") + _raw(entry, "gidNumber")
        if any(v.decode("utf-8", "replace").lower() not in wanted_posix for v in _raw(entry, "memberUid")) or any(
            v.decode("utf-8", "replace") not in gids for v in _raw(entry, "gidNumber")
        ):
            return None  # a memberUid / gidNumber value the control should have left out: not applied
        if values or posix_values:
            holders.append(group_dn)
        elif not classes:
            if not _canon_set([group_dn]) & admin:
                return None  # matched by membership, yet no value came back: not applied as expected
        elif _canon_set([group_dn]) & admin:
            ask_again.append(group_dn)  # by entryDN, or by a member value with a UID: ask
        else:
            holders.append(group_dn)  # selected only by the approximate (UID) item: a holder
    for group_dn in ask_again:
        conn.search(group_dn, f"(|{_unique_member(who)})", BASE, attributes=["1.1"], dereference_aliases="NEVER")
        if conn.result.get("result") not in (0, None):
            return None
        if _entries(conn):
            holders.append(group_dn)
    return holders, present


def _walk(
    conn: Connection,
    base: str,
    frontier: list[str],
    seen: set[tuple[tuple[tuple[str, str], ...], ...]],
    admin: set[tuple[tuple[tuple[str, str], ...], ...]],
    levels: int = MAX_NESTING,
    uids: Sequence[str] = (),
    gids: Sequence[str] = (),
) -> bool:
    """Follow ``member`` / ``uniqueMember`` upwards from *frontier*: True at an admin group.
    On the first level a ``posixGroup`` whose ``memberUid`` is one of *uids* holds too (the
    account's own names: only for a walk that starts at the account).

    *levels* searches follow the nesting; one more asks whether the groups reached at the
    last level are themselves held by a group. An admin group found then still counts; any
    other group means the nesting goes deeper than Firstline looks, and the account may be
    an administrator: ``ProtectionUnknown`` (fail closed), never "not privileged".
    """
    for level in range(levels + 1):
        if not frontier:
            return False
        members = "".join(
            f"(member={escape_filter_chars(d)}){_unique_member(escape_filter_chars(d))}" for d in frontier
        )
        flt = f"(&(|(objectClass=groupOfNames)(objectClass=groupOfUniqueNames))(|{members}))"
        if level == 0 and (uids or gids):
            flt = f"(|{flt}{_posix_holds(uids, gids)})"
        conn.search(base, flt, SUBTREE, attributes=["1.1"], dereference_aliases="NEVER")
        code = conn.result.get("result")
        if code not in (0, None):
            raise ProtectionUnknown(f"the group search failed with result {code}")
        nxt = []
        for entry in _entries(conn):
            group_dn = str(entry["dn"])
            canon = _canon_set([group_dn])
            if canon & admin:
                return True
            if not canon & seen:
                seen |= canon
                nxt.append(group_dn)
        if nxt and level == levels:
            raise ProtectionUnknown(f"group nesting deeper than {MAX_NESTING} levels")
        frontier = nxt
    return False
