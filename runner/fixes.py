"""The fixes a person may run (the runbook catalogue as people see it): by role, search, form fields.

Shared by the portal (home page "What's wrong?" and ``/api/v1/catalogue``), the CLI and,
later, triage. Only runbooks that load cleanly and are vetted in their current form are
listed (a changed runbook is refused at run time anyway, security.md item 44).

Who sees what (``runner.catalogue.audience_allows``, as at submit): an employee (no ``agent`` /
``admin`` role) sees runbooks whose ``audience`` holds ``self_service``, except those that
reset a password (``runner.catalogue.offered``: an employee resets only with a one-time
code, signed in they change it with the current one); an agent sees those with ``agent``
or ``self_service``.

Form fields (``fields``): one per parameter the caller may set. For an employee the
``account`` and ``directory`` parameters are left out — an employee's target is always
themself, enforced again by ``runner.params.validate`` — as are parameters whose
``settable_by`` excludes ``self_service``. ``secret`` parameters become password inputs
(never pre-filled); the one that sets a new password (``new_password``) is asked twice on the
portal's form (``confirm``) and carries the password rules shown while typing (``rules``:
``password_rules``), as the reset-code form does. ``enum`` and ``choice`` parameters carry their options (``choice``
from the inventory's ``choices:``; a missing inventory gives no options).
"""

from __future__ import annotations

import threading
import time
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from runner.agent import desk_only
from runner.errors import FirstlineError, ParameterError
from runner.runbook import Parameter, Runbook
from runner.vetting import check_vetted, read_lock

if TYPE_CHECKING:
    from runner.service import Firstline

MAX_QUERY = 200
# a secret parameter by this name sets a password: the form asks for it twice, with the rules
NEW_PASSWORD_PARAMS = frozenset({"new_password"})
_INPUT = {"secret": "password", "int": "number", "bool": "checkbox", "enum": "select", "choice": "select"}


@dataclass(frozen=True)
class FormField:
    """One input of a runbook's form, in one language."""

    name: str
    type: str  # the runbook parameter type
    input: str  # HTML input kind: text, password, number, checkbox, select
    label: str
    help: str | None
    required: bool
    default: str | int | bool | None
    max_length: int
    min: int | None = None
    max: int | None = None
    options: tuple[tuple[str, str], ...] = ()  # (value, label)
    confirm: bool = False  # a new password: typed twice (the portal form's ``<name>_again``)
    rules: Mapping[str, Any] | None = None  # for a new password: ``password_rules``

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "type": self.type,
            "input": self.input,
            "label": self.label,
            "help": self.help,
            "required": self.required,
            "default": self.default,
            "max_length": self.max_length,
            "min": self.min,
            "max": self.max,
            "options": [{"value": v, "label": lab} for v, lab in self.options],
            "confirm": self.confirm,
        }


@dataclass(frozen=True)
class Entry:
    """One runbook as the catalogue shows it, in one language."""

    name: str
    title: str
    description: str
    category: str
    type: str
    phrases: tuple[str, ...]
    fields: tuple[FormField, ...] = field(default_factory=tuple)
    desk: bool = False  # an agent-only one-click fix: run from the agent desk with a reason (runner.agent.desk_only)

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "title": self.title,
            "description": self.description,
            "category": self.category,
            "type": self.type,
            "phrases": list(self.phrases),
            "fields": [f.as_dict() for f in self.fields],
            "desk": self.desk,
        }


def is_employee(roles: frozenset[str] | set[str]) -> bool:
    return "agent" not in roles and "admin" not in roles


def may_run(rb: Runbook, roles: frozenset[str] | set[str]) -> bool:
    """Whether *rb* is offered to a signed-in caller with *roles*: ``runner.catalogue.offered``
    (the audience rule the run service applies at submit, less password resets for employees)."""
    from runner.catalogue import offered

    return offered(rb, roles)


def _visible(p: Parameter, employee: bool) -> bool:
    if employee and (p.type in ("account", "directory") or "self_service" not in p.settable_by):
        return False
    return True


def form_fields(app: Firstline, rb: Runbook, roles: frozenset[str] | set[str], lang: str) -> tuple[FormField, ...]:
    """The inputs the caller fills in for *rb*, labels in *lang* (``en`` / ``nl``)."""
    employee = is_employee(roles)
    out = []
    for p in rb.model.parameters:
        if not _visible(p, employee):
            continue
        options: tuple[tuple[str, str], ...] = ()
        if p.type == "enum" and p.values:
            options = tuple((v, v) for v in p.values)
        elif p.type == "choice" and p.source:
            try:
                offered = app.inventory.choices.get(p.source, {})
            except FirstlineError:
                offered = {}
            options = tuple((key, str(v.get("label") or key)) for key, v in sorted(offered.items()))
        elif p.type == "directory":
            try:
                dirs = app.inventory.directories.entries
            except FirstlineError:
                dirs = {}
            options = tuple((key, d.label) for key, d in sorted(dirs.items()))
        default = None if p.type == "secret" or (isinstance(p.default, str) and "{{" in p.default) else p.default
        new_password = p.type == "secret" and p.name in NEW_PASSWORD_PARAMS
        out.append(
            FormField(
                name=p.name,
                type=p.type,
                input=_INPUT.get(p.type, "select" if p.type == "directory" else "text"),
                label=p.label.get(lang) if p.label else p.name.replace("_", " "),
                help=p.help.get(lang) if p.help else None,
                required=p.required and p.default is None and p.type != "bool",
                default=default,
                max_length=1024 if p.type == "secret" else p.max_length,
                min=p.min,
                max=p.max,
                options=options,
                confirm=new_password,
                rules=password_rules(app) if new_password else None,
            )
        )
    return tuple(out)


def password_rules(app: Firstline) -> dict[str, Any]:
    """What a new-password form shows as the user types (no candidate ever leaves the browser):
    ``{"min_length": int, "max_length": int, "blocklist": bool, "personal_info": bool}``.

    ``min_length`` is the largest and ``max_length`` the smallest over the directories' password
    policies (the inventory's ``password_policy`` per target; 15 and 128 when none has one): a
    form may serve an account of any of them, and the server checks the account's own rules on
    submit. Used by the reset-code form (``runner.selfservice``) and the change form here.
    """
    mins, maxes = [], []
    blocklist = personal = False
    try:
        inventory = app.inventory
        entries = inventory.directories.entries
    except FirstlineError:
        entries = {}
    for entry in entries.values():
        rules = getattr(inventory.target(entry.target), "password_policy", None)
        if rules is None:
            continue
        mins.append(int(rules.min_length))
        maxes.append(int(rules.max_length))
        blocklist = blocklist or bool(rules.blocklist)
        personal = personal or bool(rules.check_personal_info)
    return {
        "min_length": max(mins) if mins else 15,
        "max_length": min(maxes) if maxes else 128,
        "blocklist": blocklist,
        "personal_info": personal,
    }


def _entry(app: Firstline, rb: Runbook, roles: frozenset[str] | set[str], lang: str) -> Entry:
    m = rb.model
    return Entry(
        name=m.name,
        title=m.title.get(lang),
        description=m.description.get(lang) if m.description else "",
        category=m.category,
        type=m.type,
        phrases=tuple(m.phrases.get(lang) or m.phrases.get("en") or ()),  # type: ignore[call-overload]
        fields=form_fields(app, rb, roles, lang),
        desk=not is_employee(roles) and desk_only(rb),
    )


def runbooks_for(app: Firstline, roles: frozenset[str] | set[str]) -> list[Runbook]:
    """Vetted, loadable runbooks *roles* may run, ordered by English title.

    Read through the shared catalogue (``Firstline.catalogue``: parsed once per file
    content, re-parsed when a file changes), not parsed anew per request: parsing every
    runbook made the home page ~50x slower than a bare page (bench/portal_home.py)."""
    approvals = read_lock(app.settings.runbooks_dir)
    out = []
    for path in sorted(app.settings.runbooks_dir.glob("*.yaml")):
        try:
            rb = app.catalogue.runbook(path.stem)
            check_vetted(rb, approvals)
        except FirstlineError:
            continue
        if may_run(rb, roles):
            out.append(rb)
    return sorted(out, key=lambda rb: rb.model.title.en.lower())


def _fold(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch))


def matches(rb: Runbook, query: str) -> bool:
    """Every word of *query* occurs (case- and accent-insensitive) in the runbook's title,
    description or phrases, in any language."""
    words = _fold(query[:MAX_QUERY]).split()
    if not words:
        return True
    m = rb.model
    texts = [m.title.en, m.title.nl or "", m.name]
    if m.description:
        texts += [m.description.en, m.description.nl or ""]
    for phrases in m.phrases.values():
        texts += list(phrases)
    haystack = _fold(" \n ".join(texts))
    return all(w in haystack for w in words)


_BUILT: dict[tuple[Any, ...], list[tuple[Runbook, Entry]]] = {}
_BUILT_LOCK = threading.Lock()


_STAMPS: dict[int, tuple[float, tuple[Any, ...]]] = {}
STAMP_SECONDS = 1.0  # how long a looked-at stamp is trusted (a changed runbook shows within a second)


def _stamp(app: Firstline) -> tuple[Any, ...]:
    """``_file_stamp``, looked at again at most once per ``STAMP_SECONDS``."""
    now = time.monotonic()
    with _BUILT_LOCK:
        seen = _STAMPS.get(id(app))
    if seen is not None and now - seen[0] < STAMP_SECONDS:
        return seen[1]
    stamp = _file_stamp(app)
    with _BUILT_LOCK:
        _STAMPS[id(app)] = (now, stamp)
    return stamp


def _file_stamp(app: Firstline) -> tuple[Any, ...]:
    """What the built entries depend on: each runbook file's and the lock file's name, size
    and modification time, and the loaded inventory (its choices feed the forms)."""
    folder = app.settings.runbooks_dir
    files = [*sorted(folder.glob("*.yaml")), folder / "vetted.lock"]
    stats = []
    for path in files:
        try:
            st = path.stat()
        except OSError:
            continue
        stats.append((path.name, st.st_size, st.st_mtime_ns))
    return (id(app), id(app.inventory), tuple(stats))


def catalogue(
    app: Firstline, roles: frozenset[str] | set[str], lang: str = "en", query: str | None = None
) -> list[Entry]:
    """The entries *roles* may run, filtered by *query* (see ``matches``), in *lang*.

    The built entries are kept per roles and language until a runbook file, the vetting
    lock or the inventory changes (``_stamp``); running a fix checks vetting again anyway."""
    key = (frozenset(roles), lang, _stamp(app))
    with _BUILT_LOCK:
        built = _BUILT.get(key)
    if built is None:
        built = [(rb, _entry(app, rb, roles, lang)) for rb in runbooks_for(app, roles)]
        with _BUILT_LOCK:
            if len(_BUILT) > 64:
                _BUILT.clear()
            _BUILT[key] = built
    return [entry for rb, entry in built if not query or matches(rb, query)]


def describe(app: Firstline, name: str, roles: frozenset[str] | set[str], lang: str = "en") -> Entry | None:
    """One entry, or None when *name* is not a runbook *roles* may run (or not vetted)."""
    for rb in runbooks_for(app, roles):
        if rb.name == name:
            return _entry(app, rb, roles, lang)
    return None


def confirmed(entry: Entry, values: Mapping[str, Any], *, required: bool) -> dict[str, Any]:
    """*values* without the second typing of a new password (``<name>_again`` of a
    ``FormField.confirm`` field), after checking it: ``ParameterError`` when it differs, or,
    with *required* (the portal's form, which always asks twice), when it is missing. The
    API takes the new password once and checks ``<name>_again`` when a client sends it."""
    out = dict(values)
    for f in entry.fields:
        if not f.confirm:
            continue
        again = out.pop(f"{f.name}_again", None)
        if values.get(f.name) in (None, ""):
            continue  # no new password: the runner says it is required
        if again in (None, ""):
            if required:
                raise ParameterError("Type the new password twice.")
        elif again != values[f.name]:
            raise ParameterError("The two new passwords are not the same. Type the same password twice.")
    return out


def form_values(entry: Entry, submitted: dict[str, Any]) -> dict[str, Any]:
    """The runbook parameters from submitted form values: only the entry's fields (others
    are ignored, never forwarded), empty optional text left out, an unchecked checkbox
    False. The runner validates the values.

    A new password (``FormField.confirm``) must come with the same text again in
    ``<name>_again`` (the portal form asks twice): ``ParameterError`` otherwise, before
    anything runs, so a typo never becomes the password nobody knows.
    """
    out: dict[str, Any] = {}
    confirmed(entry, submitted, required=True)
    for f in entry.fields:
        value = submitted.get(f.name)
        if f.input == "checkbox":
            out[f.name] = value not in (None, "", "false", "off", "0", False)
            continue
        if value is None or value == "":
            continue
        out[f.name] = value
    return out
