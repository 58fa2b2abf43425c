"""The runner's error tree, drawn once::

    FirstlineError                 root of every error the runner raises on purpose
    ├── ConfigError                settings, inventory or secret references are wrong
    ├── RunbookError               a runbook file is malformed (carries file:line)
    │   └── NotVetted              the file does not match its approved hash
    ├── ParameterError             a run's parameters were refused (names the field)
    ├── PolicyDenied               the caller may not do this (role, target scope)
    ├── NotFoundError              ticket / runbook / target does not exist
    └── LedgerError                the ticket store or audit chain is unusable

Connector errors (``connectors.base.ConnectorError``) are a separate tree; the engine
turns them into escalations. The portal maps these classes to HTTP in one place.

A message that carries values is raised as a template with named placeholders, never an
f-string, so that the portal can translate the sentence and then fill it in::

    raise ParameterError("%(label)s must be at most %(max)s", label=Text("parameter '%(name)s'", name=p.name), max=9)

``str(err)`` is the English sentence; ``err.text`` is the ``Text`` (template and values);
a value that is itself a ``Text`` is translated too (``Text.translated``).
"""

from __future__ import annotations

from collections.abc import Callable


class Text(str):
    """A sentence to show people: ``str`` of it is the English with *values* filled in;
    ``translated(gettext)`` translates the template (and every value that is a ``Text``)
    first. Placeholders are ``%(name)s``."""

    template: str
    values: dict[str, object]

    def __new__(cls, template: str, /, **values: object) -> Text:
        obj = super().__new__(cls, template % values if values else template)
        obj.template = template
        obj.values = values
        return obj

    def translated(self, gettext: Callable[[str], str]) -> str:
        if not self.values:
            return gettext(self.template)
        filled = {k: v.translated(gettext) if isinstance(v, Text) else v for k, v in self.values.items()}
        try:
            return gettext(self.template) % filled
        except (KeyError, ValueError, TypeError):  # a translation whose placeholders do not fit
            return self.template % filled


class FirstlineError(Exception):
    """Root of the runner's errors; ``str(err)`` is safe to show to people.

    ``FirstlineError("... %(name)s ...", name=value)`` keeps the template for translation
    (``text``); without keywords the message is taken as it is."""

    exit_code = 2
    # What an audit event's ``reason`` says of the refusal (snake_case, as every other reason).
    reason_code = "refused"

    def __init__(self, *args: object, **values: object) -> None:
        if values:
            (template,) = args
            args = (Text(str(template), **values),)
        super().__init__(*args)

    def translated(self, gettext: Callable[[str], str]) -> str:
        """The message in the language of *gettext*: its template translated, then filled in."""
        first = self.args[0] if len(self.args) == 1 else None
        return first.translated(gettext) if isinstance(first, Text) else gettext(str(self))


class ConfigError(FirstlineError):
    """Settings, inventory or a secret reference is missing or malformed."""

    reason_code = "config_error"


class RunbookError(FirstlineError):
    """A runbook failed to load; ``problems`` lists ``file:line: message`` entries."""

    reason_code = "runbook_invalid"

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


class NotVetted(RunbookError):
    """The runbook file changed since it was approved, or was never approved."""

    reason_code = "not_vetted"


class ParameterError(FirstlineError):
    """A parameter value was refused; the message names the parameter."""

    reason_code = "invalid_parameter"


class PolicyDenied(FirstlineError):
    """The requester may not run this runbook on this target."""

    reason_code = "policy_denied"


class NotFoundError(FirstlineError):
    """A ticket, runbook or inventory target does not exist."""

    reason_code = "not_found"


class LedgerError(FirstlineError):
    """The ticket store or audit chain cannot be used."""

    reason_code = "ledger_error"
