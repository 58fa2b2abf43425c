"""The ``firstline`` CLI's error lines in the reader's language (English or Dutch).

The translations are the portal's gettext catalogue
(``portal/locale/<lang>/LC_MESSAGES/messages.po``), read here as a data file with Babel:
``runner`` never imports ``portal``. The CLI's own sentences and the messages other runner
modules raise as plain strings are marked with ``N_`` below, so that
``tools/portal_catalogues.py`` extracts them into that catalogue and ``--check`` holds
their Dutch to account.

How an error becomes a line (``translate``):

* a ``runner.errors.Text`` (or any error with ``translated(gettext)``): the template is
  translated, then filled in (values that are ``Text`` translated too);
* a plain message the catalogue has as it stands: its translation;
* a message built with an f-string elsewhere (settings, database and broker URLs, the
  vetting check): matched against ``PATTERNS``, the values carried over, sentences among
  them (``SENTENCES``) translated in turn;
* anything else (a connector's technical detail, a runbook file's ``file:line`` problem,
  pydantic's rarer sentences) stays English.

``inventory check`` and ``runbooks check`` hand over their inventory problems as ``Text``
(``runner.inventory_check``, listed in the catalogue tool's ``RUNNER_SOURCES``).
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Sequence
from functools import cache
from pathlib import Path

from runner.errors import Text

LANGS = ("en", "nl")
LOCALE_DIR = Path(__file__).resolve().parents[1] / "portal" / "locale"
Gettext = Callable[[str], str]


def N_(message: str) -> str:  # gettext's name for "mark, do not translate yet"
    return message


# The CLI's frame around every error line, and its own usage errors (runner/cli.py).
ERROR = N_("error: %(message)s")
TRY_HELP = N_("%(what)s. Try '%(where)s --help'.")
NO_SUCH_OPTION = N_("no such option %(option)s")
DID_YOU_MEAN = N_("%(what)s (did you mean %(options)s?)")
ONE_OF = N_("%(label)s must be one of: %(values)s")  # the runner's own template, already in the catalogue
EXTRA_ARGUMENTS = N_("unexpected extra argument(s) (not shown); options take the form --name value")
INVALID_VALUE = N_("Invalid value for %(hint)s: %(message)s")
MISSING_COMMAND = N_("%(command)s: a command is missing (one of: %(commands)s); see '%(command)s --help'.")
ABORTED = N_("aborted.")
ARG_NOT_TEXT = N_("error: argument %(position)s is not UTF-8 text (%(shown)s); nothing was done.")
OUTPUT_FAILED = N_("error: the output could not be written (%(reason)s)")
CRASHED_LOGGED = N_("internal error (%(kind)s); details are in the log file %(file)s")
CRASHED_UNLOGGED = N_(
    "internal error (%(kind)s); no log file could be written (check FIRSTLINE_DATA_DIR / FIRSTLINE_LOG_FILE)"
)
PARAM_FORM = N_("each --param must be key=value, e.g. --param user=alice (the value given is not shown)")
PARAM_TWICE = N_("'%(name)s' is given twice; give each parameter once")
PARAM_EMPTY = N_(
    "'%(name)s' is given without a value; give a value, or leave --param %(name)s out to use the runbook's default"
)
PARAM_IS_SECRET = N_(
    "'%(name)s' is secret: use --secret %(name)s so it stays out of shell history and ps (the value given is not shown)"
)
NOT_A_SECRET = N_("that is not a secret parameter of %(runbook)s; its secret parameters are: %(names)s")
NO_SECRETS = N_("none")
SECRET_TWICE = N_("'%(name)s' is given twice; give each secret once")
SECRET_MISSING = N_(
    "'%(name)s' is a required secret: add --secret %(name)s (it is asked for, or read as one line of standard input)"
)
RUNBOOKS_DIR_MISSING = N_("%(dir)s: no such directory (FIRSTLINE_RUNBOOKS_DIR)")
RUNBOOKS_DIR_EMPTY = N_("%(dir)s: no runbooks in it (NAME.yaml files)")
SECRET_NO_STDIN = N_("no value for secret '%(name)s' on standard input")
SECRET_EMPTY = N_("the value for secret '%(name)s' is empty; give one, or leave --secret %(name)s out")
SECRET_AGAIN = N_("%(name)s (again)")
SECRET_DIFFERENT = N_("the two values typed for secret '%(name)s' are not the same; nothing was run, type it again")
SECRET_NOT_UTF8 = N_("the value for secret '%(name)s' on standard input is not UTF-8 text")
SECRET_TOO_LONG = N_(
    "the value for secret '%(name)s' on standard input is too long: one line of at most %(limit)s characters"
)
UNTIL_BEFORE_SINCE = N_("must be later than --since (--since is inclusive, --until exclusive)")
QUEUES = N_("give interactive, batch or both (comma-separated, each once)")
WORKER_NO_BROKER = N_("FIRSTLINE_BROKER_URL is not set: a worker needs a broker (docs/deployment.md)")
# Lines of `runbooks check`, `inventory check` and `worker` (besides errors).
LINT_PROBLEMS = N_("%(count)s problem(s).")
LINT_OK = N_("All runbooks are valid and vetted.")
INVENTORY_PROBLEMS = N_("%(file)s: %(count)s problem(s); nothing was connected to.")
INVENTORY_VALID = N_("%(file)s: valid (%(count)s targets).")
TARGET_OK = N_("ok")
TARGET_FAILED = N_("FAILED")
TARGET_NOT_CHECKED = N_("not checked")
WORKER_READY = N_("firstline worker ready: queues %(queues)s; %(slots)s %(pool)s slot(s); broker %(broker)s")
WORKER_STOPPING = N_("firstline worker stopping: finishing the runs in progress")
# A problem in front of which the file or field is named (runner.inventory_check, runner.catalogue).
FRAMES = (N_("%(file)s: %(problem)s"), N_("%(where)s: %(problem)s"))
SERVE_NO_RUN_KEY = N_(
    "serve --workers needs FIRSTLINE_RUN_KEY (or FIRSTLINE_RUN_KEY_FILE): once-only values such as a "
    "temporary password are handed between portal processes sealed with it"
)

# Fixed sentences raised as plain strings elsewhere (settings, broker, database, click).
EXACT = (
    N_("FIRSTLINE_BROKER_URL is not set (e.g. redis://127.0.0.1:6379/0 or amqp://host:5672//)"),
    N_(
        "FIRSTLINE_BROKER_URL contains a space, line break or control character (the value is not shown); "
        "set it to the URL alone"
    ),
    N_("FIRSTLINE_BROKER_URL is not a valid URL"),
    N_(
        "FIRSTLINE_BROKER_URL must be redis://host:port/N, rediss://..., amqp://user:password@host:port/vhost "
        "or amqps://... (the value given is not shown)"
    ),
    N_(
        "FIRSTLINE_BROKER_URL: the Redis database must be a number after the port, "
        "e.g. redis://host:6379/0 (the value given is not shown)"
    ),
    N_(
        "FIRSTLINE_DATABASE_URL contains a line break or control character (the value is not shown); "
        "set it to the URL alone"
    ),
    N_(
        "FIRSTLINE_DATABASE_URL names an in-memory SQLite database, which keeps nothing; "
        "give a file, e.g. sqlite:////var/lib/firstline/firstline.db"
    ),
    N_("FIRSTLINE_AUDIT_KEY must be at least 32 characters"),
    # runner.celery_app._BROKER_PROBLEMS: why a broker cannot be used
    N_("an option in the URL's query is not known"),
    N_("the Redis database number is out of range (the server has 16 by default: 0-15)"),
    N_("the Redis database must be a number, e.g. redis://host:6379/0"),
    N_("the virtual host does not exist or the user may not use it"),
    N_("TLS failed; is that a TLS port (rediss://, amqps://)?"),
    N_("the host name does not resolve"),
    N_("connection refused: nothing listens on that port"),
    N_("the server there did not answer as this kind of broker; check the scheme and port"),
    N_("Permission denied"),
    N_("No such file or directory"),
    N_("Not a directory"),
    N_("Read-only file system"),
    N_("Input should be a valid integer, unable to parse string as an integer"),
    # pydantic's sentences most often met in an inventory check (runner.inventory_check)
    N_("Field required"),
    N_("Extra inputs are not permitted"),
    N_("Input should be a valid string"),
    N_("Input should be a valid boolean"),
    N_("Input should be a valid dictionary"),
    N_("a secret must be a reference {env: NAME} or {file: PATH}, never written inline (value not shown)"),
)

# Messages built with f-strings elsewhere: matched as patterns (placeholders as the values sit).
PATTERNS = (
    N_(
        "FIRSTLINE_DATABASE_URL is not a database URL Firstline can use (scheme '%(scheme)s'); "
        "e.g. sqlite:////var/lib/firstline/firstline.db or postgresql+psycopg2://user@host/db"
    ),
    N_("FIRSTLINE_DATABASE_URL cannot be used: %(file)s: %(reason)s"),
    N_("database is not usable (FIRSTLINE_DATABASE_URL): %(problem)s"),
    N_(
        "FIRSTLINE_DATABASE_URL: the database holds %(count)s table(s) but no Firstline schema "
        "(another application's database?); point it at an empty database or Firstline's own"
    ),
    N_("FIRSTLINE_BROKER_URL: the broker at %(place)s cannot be used: %(problem)s"),
    N_(
        "%(variable)s cannot be used: %(path)s: %(reason)s. Set it to a directory this user can write "
        "(data dir now: %(data_dir)s)."
    ),
    N_(
        "%(variable)s cannot be used: %(path)s: %(reason)s. Set it to a file in a directory this user "
        "can write (data dir now: %(data_dir)s)."
    ),
    N_(
        "no audit key: set FIRSTLINE_AUDIT_KEY (32+ random characters) or create the file "
        "FIRSTLINE_AUDIT_KEY_FILE=%(path)s (mode 600). Firstline creates a key itself only when "
        "FIRSTLINE_ENVIRONMENT=dev or test."
    ),
    N_("audit key file %(path)s may be read by other users (mode %(mode)s); chmod 600 it"),
    N_("no answer within %(seconds)s s"),
    N_("settings: %(problems)s"),
    N_("--requester is empty: give an account name, or leave the option out"),
    N_("%(variable)s is set but empty; give a path, or unset it for the default"),
    N_("%(variable)s: not a supported language; expected one of en (English), nl (Dutch)"),
    N_("runbook '%(name)s' is not vetted; an admin must review it and run `firstline runbooks vet %(name)s --by NAME`"),
    N_(
        "runbook '%(name)s' changed since it was vetted by %(by)s on %(date)s; it will not run until it is "
        "reviewed and vetted again"
    ),
    N_("Missing argument %(name)s."),
    N_("Missing option %(name)s."),
    N_("No such command %(name)s."),
    N_("Option %(name)s requires an argument."),
    N_("Input should be greater than or equal to %(min)s"),
    N_("Input should be less than or equal to %(max)s"),
    INVALID_VALUE,
)
# Placeholders whose value is itself a sentence (translated in turn); others are carried over as they are.
SENTENCES = frozenset({"problem", "problems", "reason", "message"})


@cache
def catalogue(lang: str) -> dict[str, str]:
    """The translated, non-fuzzy singular messages of *lang*'s catalogue (empty for English
    or when the file is missing)."""
    po = LOCALE_DIR / lang / "LC_MESSAGES" / "messages.po"
    if lang == "en" or not po.is_file():
        return {}
    from babel.messages.pofile import read_po

    with po.open("rb") as fh:
        read = read_po(fh, locale=lang)
    return {
        m.id: m.string
        for m in read
        if isinstance(m.id, str) and m.id and isinstance(m.string, str) and m.string and not m.fuzzy
    }


def gettext_in(lang: str) -> Gettext:
    table = catalogue(lang)
    return lambda message: table.get(message, message)


@cache
def _patterns() -> tuple[tuple[re.Pattern[str], str], ...]:
    compiled = []
    for template in PATTERNS:
        pattern, pos, seen = "", 0, set()
        for match in re.finditer(r"%\((\w+)\)s", template):
            name = match.group(1)
            group = f"(?P={name})" if name in seen else f"(?P<{name}>.+?)"
            seen.add(name)
            pattern += re.escape(template[pos : match.start()]) + group
            pos = match.end()
        compiled.append((re.compile(pattern + re.escape(template[pos:]) + r"\Z", re.DOTALL), template))
    return tuple(compiled)


def translate(message: object, lang: str) -> str:
    """*message* (an error, a ``Text`` or a plain English sentence) in *lang*; English, and
    anything no translation is known for, as it is."""
    translated = getattr(message, "translated", None)
    if lang == "en" or lang not in LANGS:
        return str(message)
    text = str(message)
    if callable(translated):  # an error or Text: its template translated, then filled in
        done = str(translated(gettext_in(lang)))
        if done != text:
            return done  # else a plain message (an f-string raised as it is): try the patterns below
    found = catalogue(lang).get(text)
    if found is not None:
        return found
    for pattern, template in _patterns():
        match = pattern.match(text)
        if match is None or template not in catalogue(lang):
            continue
        values = {k: translate(v, lang) if k in SENTENCES else v for k, v in match.groupdict().items()}
        try:
            return catalogue(lang)[template] % values
        except (KeyError, ValueError, TypeError):  # a translation whose placeholders do not fit
            return text
    return text


def say(lang: str, template: str, /, **values: object) -> str:
    """The CLI's own *template* in *lang*, filled in (values that are ``Text`` translated too)."""
    return translate(Text(template, **values), lang)


def error_line(message: object, lang: str) -> str:
    """One line for stderr: "error: …" (Dutch "fout: …") around *message* in *lang*."""
    return say(lang, ERROR, message=translate(message, lang))


def runbook_problem(problem: str, lang: str) -> str:
    """A runbook problem (``file:line: message``) with its message in *lang*."""
    where, sep, message = problem.partition(": ")
    if not sep or not re.search(r":\d+\Z", where):
        return translate(problem, lang)
    return f"{where}: {translate(message, lang)}"


def chosen_lang(argv: Sequence[str]) -> str:
    """The language of the CLI's error lines: a valid ``--lang`` on the command line, else
    FIRSTLINE_LANG, else Dutch when the locale (LANG) is Dutch, else English. Never raises:
    an error about the settings themselves must still be said."""
    for i, arg in enumerate(argv):
        if arg == "--":
            break
        value = argv[i + 1] if arg == "--lang" and i + 1 < len(argv) else arg.removeprefix("--lang=")
        if (arg == "--lang" or arg.startswith("--lang=")) and value in LANGS:
            return value
    setting = re.split(r"[_.@-]", os.environ.get("FIRSTLINE_LANG", "").strip().lower(), maxsplit=1)[0]
    if setting in LANGS:  # read as runner.settings reads it (nl, NL, nl_NL.UTF-8)
        return setting
    return "nl" if os.environ.get("LANG", "").lower().startswith("nl") else "en"
