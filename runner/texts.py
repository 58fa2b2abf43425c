"""Stored outcome texts shown in the reader's language.

A ticket keeps its messages in English: that is the record an ITSM export, an auditor and
the service desk read, whatever language the requester used. When a page or the API shows
a message to someone reading Dutch, ``localize(text, "nl")`` gives the Dutch text:

* exact sentences (``EXACT``): the runner's and the connectors' fixed messages a requester
  can meet (an unknown account, a missing password, the engine's step words, the run
  seam's never-started / lost / changed-runbook texts);
* templates with values: the password-policy texts of ``connectors.password_policy``
  (``{min}``, ``{max}`` ...) and the target-busy text, matched as patterns, the values
  carried over;
* anything else (a technical message of an SSH or WinRM target, which only the service
  desk sees in full) stays as it was written.

Dutch uses the formal "u", as the portal's own pages do.
"""

from __future__ import annotations

import json
import re
from functools import cache

from connectors.password_policy import MESSAGES

LANGS = ("en", "nl")

EXACT: dict[str, str] = {
    # connectors: account look-ups and input
    "The account does not exist.": "Het account bestaat niet.",
    "Give the password.": "Geef het wachtwoord op.",
    "Give an account name.": "Geef een accountnaam op.",
    "The account name is too long.": "De accountnaam is te lang.",
    "More than one account matches that name.": "Meer dan één account heeft die naam.",
    "The user name or password is not correct.": "De gebruikersnaam of het wachtwoord klopt niet.",
    "The account has no e-mail address in the directory.": "Bij het account staat geen e-mailadres in de directory.",
    "The e-mail address is not valid.": "Het e-mailadres is niet geldig.",
    "The mail server refused the recipient address.": "De mailserver weigerde het adres van de ontvanger.",
    "The directory still reports the account as locked.": "De directory meldt het account nog steeds als geblokkeerd.",
    "The directory refused the change.": "De directory weigerde de wijziging.",
    "The directory refused the account lookup.": "De directory weigerde het opzoeken van het account.",
    "The directory could not read the account.": "De directory kon het account niet lezen.",
    "The directory could not search for the account.": "De directory kon het account niet zoeken.",
    "The directory refused the service connection.": "De directory weigerde de verbinding van Firstline.",
    "The service account is not allowed to do this on that account.": ("Firstline mag dit bij dat account niet doen."),
    # connectors.ldap: a must-change reset the directory would not enforce, or of which that is not known
    "The directory would not make this account change the new password at the next sign-in: its password "
    "policy does not require a change after a reset (pwdMustChange is not TRUE). Nothing was changed; reset "
    "it without 'must be changed at the next sign-in' only if that is intended.": (
        "De directory zou dit account het nieuwe wachtwoord bij de volgende aanmelding niet laten wijzigen: "
        "het wachtwoordbeleid vereist geen wijziging na een reset (pwdMustChange is niet TRUE). Er is niets "
        "gewijzigd; stel het alleen zonder 'moet bij de volgende aanmelding gewijzigd worden' opnieuw in als "
        "dat de bedoeling is."
    ),
    "The directory would not make this account change the new password at the next sign-in: the account is "
    "set so that its password never expires, and the directory then ignores 'must change at next logon'. "
    "Nothing was changed; reset it without 'must be changed at the next sign-in' only if that is intended.": (
        "De directory zou dit account het nieuwe wachtwoord bij de volgende aanmelding niet laten wijzigen: "
        "bij het account is ingesteld dat het wachtwoord nooit verloopt, en de directory negeert dan 'moet "
        "wachtwoord bij volgende aanmelding wijzigen'. Er is niets gewijzigd; stel het alleen zonder 'moet bij "
        "de volgende aanmelding gewijzigd worden' opnieuw in als dat de bedoeling is."
    ),
    "This account signs in with a smart card, so a new password would not let the person in. Nothing was "
    "changed; the service desk will look at it (a lost or broken card is replaced, not reset).": (
        "Dit account meldt zich aan met een smartcard, dus een nieuw wachtwoord zou de persoon niet binnenlaten. "
        "Er is niets gewijzigd; de servicedesk kijkt ernaar (een verloren of kapotte kaart wordt vervangen, niet "
        "opnieuw ingesteld)."
    ),
    "The directory does not allow another password change for this account yet (its password policy sets a "
    "minimum time between changes). Nothing was changed; the service desk will look at it.": (
        "De directory staat voor dit account nog geen nieuwe wachtwoordwijziging toe (het wachtwoordbeleid "
        "schrijft een minimale tijd tussen wijzigingen voor). Er is niets gewijzigd; de servicedesk kijkt ernaar."
    ),
    "The directory would make this account change the new password at the next sign-in, but its password "
    "policy does not let the account change its own password (pwdAllowUserChange is FALSE), so the account "
    "could not be used at all. Nothing was changed; the service desk will look at it.": (
        "De directory zou dit account het nieuwe wachtwoord bij de volgende aanmelding laten wijzigen, maar het "
        "wachtwoordbeleid staat niet toe dat het account zijn eigen wachtwoord wijzigt (pwdAllowUserChange is "
        "FALSE), zodat het account helemaal niet te gebruiken zou zijn. Er is niets gewijzigd; de servicedesk "
        "kijkt ernaar."
    ),
    "The password policy that applies to this account could not be read, so Firstline cannot tell whether "
    "the directory would make the new password be changed at the next sign-in. Nothing was changed; the "
    "service desk will look at it (the service account must be able to read the policy entry named by the "
    "account's pwdPolicySubentry, or by ppolicy_default_dn of the target).": (
        "Het wachtwoordbeleid dat voor dit account geldt kon niet worden gelezen, dus Firstline kan niet "
        "vaststellen of de directory het nieuwe wachtwoord bij de volgende aanmelding zou laten wijzigen. Er "
        "is niets gewijzigd; de servicedesk kijkt ernaar (het serviceaccount moet het beleid kunnen lezen "
        "waarnaar pwdPolicySubentry van het account of ppolicy_default_dn van het doel verwijst)."
    ),
    # the engine's step words and fixed step messages (runner.engine)
    "Done": "Klaar",
    "Not needed": "Niet nodig",
    "Nothing to change: it was already as it should be.": "Niets te wijzigen: het was al zoals het hoort.",
    "Firstline is not configured correctly for this; the service desk has been told.": (
        "Firstline is hiervoor niet goed ingesteld; de servicedesk is op de hoogte gebracht."
    ),
    "The runbook could not prepare this step; the service desk has been told.": (
        "Het runbook kon deze stap niet voorbereiden; de servicedesk is op de hoogte gebracht."
    ),
    "An internal error stopped this step; the operator log has the details.": (
        "Een interne fout stopte deze stap; het beheerderslogboek heeft de details."
    ),
    "Resolved by automation.": "Automatisch opgelost.",
    "Done (read moments before by the look-up that started this request).": (
        "Klaar (gelezen vlak ervoor, bij het opzoeken waarmee dit verzoek begon)."
    ),
    "The request could not be done as asked.": "Het verzoek kon niet worden uitgevoerd zoals gevraagd.",
    "The runbook could not finish.": "Het runbook kon niet afronden.",
    # the run seam (runner.runs, runner.leases)
    "The runbook was changed after this request was made, so it was not run; "
    "the service desk will check it. Nothing was changed.": (
        "Het runbook is gewijzigd nadat dit verzoek werd gedaan, dus het is niet uitgevoerd; "
        "de servicedesk kijkt ernaar. Er is niets gewijzigd."
    ),
    "The secret values of this request were not available where it was to run "
    "(for example after a restart); nothing was changed. Please make the request again.": (
        "De geheime waarden van dit verzoek waren niet beschikbaar waar het moest draaien "
        "(bijvoorbeeld na een herstart); er is niets gewijzigd. Doe het verzoek opnieuw."
    ),
    "The request waited too long and was never started; nothing was changed. Please try again.": (
        "Het verzoek heeft te lang gewacht en is nooit gestart; er is niets gewijzigd. Probeer het opnieuw."
    ),
    "The run stopped before it finished (worker lost); second level must check the target's state.": (
        "De uitvoering stopte voordat ze klaar was (verwerker verloren); de tweede lijn controleert de toestand."
    ),
    "The run was interrupted; what the step had started was stopped.": (
        "De uitvoering werd onderbroken; wat de stap had gestart, is gestopt."
    ),
    "The run was interrupted; check the target.": "De uitvoering werd onderbroken; controleer het doelsysteem.",
    "No step of this runbook applied to the request, so nothing was checked or fixed; "
    "the inventory's choice may name a kind no step handles.": "Geen enkele stap van dit runbook was van toepassing "
    "op het verzoek, dus er is niets gecontroleerd of opgelost; de keuze in de inventaris noemt mogelijk een soort "
    "(kind) die geen stap behandelt.",
    "The request could not be handed to a worker (the run queue is not reachable); it was not started and "
    "nothing was changed. Please try again in a few minutes.": (
        "Het verzoek kon niet aan een verwerker worden overgedragen (de wachtrij is niet bereikbaar); het is niet "
        "gestart en er is niets gewijzigd. Probeer het over een paar minuten opnieuw."
    ),
    "The run was interrupted before it started; nothing was changed. Please try again.": (
        "De uitvoering werd onderbroken voordat ze begon; er is niets gewijzigd. Probeer het opnieuw."
    ),
    "The run was interrupted while it waited to try this step again; nothing more was done.": (
        "De uitvoering werd onderbroken terwijl ze wachtte om deze stap opnieuw te proberen; er is niets meer gedaan."
    ),
    "The run stopped because its steps could not be recorded (the database was unavailable); "
    "second level must check the target's state.": (
        "De uitvoering stopte omdat de stappen niet konden worden vastgelegd (de database was niet "
        "beschikbaar); de tweede lijn controleert de toestand."
    ),
    "The worker running this step stopped (its lease expired).": (
        "De verwerker die deze stap uitvoerde is gestopt (zijn lease is verlopen)."
    ),
}

# Templates with values: English pattern → Dutch template (str.format fields).
_TEMPLATES: tuple[tuple[str, str], ...] = (
    ("Waiting for {ticket} on {key}", "Wacht op {ticket}, dat met hetzelfde bezig is ({key})"),
    (
        "Another request ({other}) did the same on the same {what} while this one waited, so it was not "
        "done twice; nothing was changed here. The outcome of {other2} stands: a temporary password made "
        "there is the one that works.",
        "Een ander verzoek ({other}) deed hetzelfde op hetzelfde doel ({what}) terwijl dit verzoek wachtte, "
        "dus het is niet twee keer gedaan; hier is niets gewijzigd. De uitkomst van {other2} blijft staan: "
        "een tijdelijk wachtwoord dat daar is gemaakt, is het wachtwoord dat werkt.",
    ),
    # the audit chain's verification problems (runner.ledger.audit.verify), parts joined by "; "
    (
        "the checkpoint file {name} is missing (it is kept outside the database from the first event on)",
        "het controlepuntbestand {name} ontbreekt (het wordt vanaf de eerste gebeurtenis buiten de database bewaard)",
    ),
    (
        "the checkpoint file {name} has a line that is no checkpoint (line {number})",
        "het controlepuntbestand {name} heeft een regel die geen controlepunt is (regel {number})",
    ),
    ("checkpoint at {seq} has a bad signature", "het controlepunt bij {seq} heeft een ongeldige handtekening"),
    (
        "sequence jumps from {first} to {second} (events missing or inserted)",
        "de volgorde springt van {first} naar {second} (gebeurtenissen ontbreken of zijn ingevoegd)",
    ),
    ("event {seq} does not link to event {before}", "gebeurtenis {seq} sluit niet aan op gebeurtenis {before}"),
    ("event {seq} was altered (hash mismatch)", "gebeurtenis {seq} is gewijzigd (de hash klopt niet)"),
    (
        "event {seq} was altered (column {names} differs from the chained record)",
        "gebeurtenis {seq} is gewijzigd (kolom {names} wijkt af van het geketende record)",
    ),
    (
        "event {seq} was altered (columns {names} differ from the chained record)",
        "gebeurtenis {seq} is gewijzigd (kolommen {names} wijken af van het geketende record)",
    ),
    (
        "event {seq} was altered (its stored record is not JSON)",
        "gebeurtenis {seq} is gewijzigd (het opgeslagen record is geen JSON)",
    ),
    (
        "event {seq} was altered (its stored record is not a JSON object)",
        "gebeurtenis {seq} is gewijzigd (het opgeslagen record is geen JSON-object)",
    ),
    (
        "events after {checkpoint} differ from the signed checkpoint at {seq} (the chain was rewritten)",
        "gebeurtenissen na {checkpoint} wijken af van het ondertekende controlepunt bij {seq} (de keten is "
        "herschreven)",
    ),
    (
        "events after {last} are missing (signed head/checkpoint reaches {reach})",
        "gebeurtenissen na {last} ontbreken (de ondertekende kop of een controlepunt reikt tot {reach})",
    ),
    (
        "events after the signed head {seq} were added outside the ledger",
        "gebeurtenissen na de ondertekende kop {seq} zijn buiten Firstline toegevoegd",
    ),
    (
        "events up to {seq} are missing (the chain head is missing)",
        "gebeurtenissen tot en met {seq} ontbreken (de kop van de keten ontbreekt)",
    ),
    (
        "events after {checkpoint} were rewritten: event {seq} and those after it up to the signed head "
        "{head} are genuine, but event {prev} is not the one they follow",
        "gebeurtenissen na {checkpoint} zijn herschreven: gebeurtenis {seq} en de volgende tot de ondertekende "
        "kop {head} zijn echt, maar gebeurtenis {prev} is niet die waarop zij volgen",
    ),
    (
        "events after {checkpoint} were rewritten: event {seq} is not the one the signed head names",
        "gebeurtenissen na {checkpoint} zijn herschreven: gebeurtenis {seq} is niet die welke de ondertekende "
        "kop noemt",
    ),
    (
        "the signed chain head is missing (deleted): events after {checkpoint} cannot be vouched for",
        "de ondertekende kop van de keten ontbreekt (verwijderd): voor gebeurtenissen na {checkpoint} kan "
        "niemand instaan",
    ),
    (
        "Another request ({other}) was still working on the same {what} after {seconds} s, so this one "
        "was not run; nothing was changed. The service desk will look at it.",
        "Een ander verzoek ({other}) werkte na {seconds} s nog aan hetzelfde doel ({what}), dus dit verzoek "
        "is niet uitgevoerd; er is niets gewijzigd. De servicedesk kijkt ernaar.",
    ),
)


@cache
def _patterns(lang: str) -> tuple[tuple[re.Pattern[str], str], ...]:
    pairs = [(texts["en"], texts[lang]) for texts in MESSAGES.values() if lang in texts]
    pairs += list(_TEMPLATES) if lang == "nl" else []
    out = []
    for english, other in pairs:
        if "{" not in english:
            continue
        pattern, pos = "", 0
        for match in re.finditer(r"\{(\w+)\}", english):
            pattern += re.escape(english[pos : match.start()]) + f"(?P<{match.group(1)}>.+?)"
            pos = match.end()
        pattern += re.escape(english[pos:])
        out.append((re.compile(pattern + r"\Z", re.DOTALL), other))
    return tuple(out)


@cache
def _exact(lang: str) -> dict[str, str]:
    from runner.runs import REQUESTER_GUIDANCE  # imported here: runner.runs is heavy and imports much

    table = {texts["en"]: texts[lang] for texts in MESSAGES.values() if lang in texts and "{" not in texts["en"]}
    if lang == "nl":
        table.update(EXACT)
    if lang in REQUESTER_GUIDANCE:
        table[REQUESTER_GUIDANCE["en"]] = REQUESTER_GUIDANCE[lang]
    return table


def localize(text: str | None, lang: str) -> str | None:
    """*text* (a stored English message) in *lang* when a translation is known, else unchanged.

    None stays None. Values in templated messages (a length, a ticket number) are carried
    over as they were stored (already redacted)."""
    if text is None or lang == "en" or lang not in LANGS:
        return text
    found = _exact(lang).get(text)
    if found is not None:
        return found
    for pattern, template in _patterns(lang):
        match = pattern.match(text)
        if match:
            return template.format(**match.groupdict())
    return text


DETAILS_WITH_THE_DESK = {
    "en": "The service desk has the details.",
    "nl": "De servicedesk heeft de details.",
}


def for_requester(text: str | None, reason: str | None, lang: str) -> str | None:
    """Why an escalated ticket or its step stopped, as the requester reads it in *lang*.

    ``localize`` when a translation is known (or in English). A target's technical sentence
    has none (an SSH printer's state, a WinRM fault): the service desk reads it in full, the
    requester reads its reason in plain words (``REASONS``: "De printer staat stil."), or,
    for a reason without words, that the service desk has the details — never an English
    sentence on a Dutch page. Only for what the desk takes on: a message that tells the
    requester what to correct (a closed ticket) is shown with ``localize`` as it is.
    """
    shown = localize(text, lang)
    if text is None or lang == "en" or lang not in LANGS or shown != text:
        return shown
    words = REASONS.get(reason or "", {}).get(lang)
    return f"{words[:1].upper()}{words[1:]}." if words else DETAILS_WITH_THE_DESK[lang]


def requester_message_in(
    state: str, message: str | None, reason: str | None, note: str | None, note_i18n: str | None, lang: str
) -> str | None:
    """A ticket's message as its requester reads it in *lang* (the ticket page, "My tickets",
    the API's run answer): ``message_in``; for an escalated ticket a target's technical
    sentence is said by its reason (``for_requester``)."""
    if state == "escalated" and message != note:
        return for_requester(message, reason, lang)
    return message_in(message, note, note_i18n, lang)


CHAIN_EXACT = {  # the verification problems without values (runner.ledger.audit.verify)
    "the audit chain is empty, but the ledger holds tickets (their events are gone)": (
        "de auditketen is leeg, maar er zijn tickets (hun gebeurtenissen zijn verdwenen)"
    ),
    "the chain head's signature does not match (the chain was rewritten)": (
        "de handtekening van de kop van de keten klopt niet (de keten is herschreven)"
    ),
    "the chain head's signature does not match either (the chain was rewritten)": (
        "ook de handtekening van de kop van de keten klopt niet (de keten is herschreven)"
    ),
    "the signed chain head is missing": "de ondertekende kop van de keten ontbreekt",
}


def chain_problem(text: str, lang: str) -> str:
    """A verification problem of the audit chain (English, parts joined by "; ") in *lang*;
    a part with no known translation stays as it is."""
    if lang != "nl":
        return text
    return "; ".join(CHAIN_EXACT.get(part) or localize(part, lang) or part for part in text.split("; "))


# The service desk's reading of messages written for the employee: on the agent desk "the
# service desk can help" points at the reader, so it says what to do and what second level
# needs instead. Keyed by the stored English text; the employee's pages keep ``localize``.
AGENT_TEXTS: dict[str, dict[str, str]] = {
    MESSAGES["disabled"]["en"]: {
        "en": "The account is disabled; Firstline does not enable accounts. Hand it to second level "
        "(identity management) with the account name and who confirmed that it should be enabled again.",
        "nl": "Het account is uitgeschakeld; Firstline schakelt geen accounts in. Geef het door aan de tweede "
        "lijn (identiteitsbeheer) met de accountnaam en wie bevestigde dat het weer ingeschakeld moet worden.",
    },
    MESSAGES["expired"]["en"]: {
        "en": "The account has expired (its end date has passed); Firstline does not extend accounts. Hand it "
        "to second level (identity management) with the account name and the new end date, approved by the "
        "employee's manager.",
        "nl": "Het account is verlopen (de einddatum is voorbij); Firstline verlengt geen accounts. Geef het "
        "door aan de tweede lijn (identiteitsbeheer) met de accountnaam en de nieuwe einddatum, goedgekeurd "
        "door de leidinggevende van de medewerker.",
    },
    MESSAGES["locked"]["en"]: {
        "en": "The account is locked: unlock it first (Unlock the account), then run this fix again.",
        "nl": "Het account is geblokkeerd: ontgrendel het eerst (Account ontgrendelen) en voer deze "
        "oplossing daarna opnieuw uit.",
    },
}
AGENT_REQUESTER_NOTE = {
    "en": "Closed for the requester to correct (the message says what); nothing for the service desk to do "
    "unless they ask again.",
    "nl": "Gesloten zodat de aanvrager het kan corrigeren (de melding zegt wat); de servicedesk hoeft niets "
    "te doen tenzij de aanvrager opnieuw vraagt.",
}


def for_agent(text: str | None, lang: str) -> str | None:
    """*text* (a stored English ticket or step message) as the service desk should read it:
    the agent's guidance (``AGENT_TEXTS``) when the stored text is addressed to the
    employee, else ``localize``."""
    if text is not None and text in AGENT_TEXTS:
        texts = AGENT_TEXTS[text]
        return texts.get(lang, texts["en"])
    return localize(text, lang)


def agent_note_in(note: str | None, stored_i18n: str | None, lang: str) -> str | None:
    """A ticket's resolution note for the service desk: the requester guidance of a ticket
    closed for the requester ("You can fix this yourself ...") becomes the desk's reading of
    it; any other note as ``note_in``."""
    from runner.runs import REQUESTER_GUIDANCE

    if note is not None and note == REQUESTER_GUIDANCE["en"]:
        return AGENT_REQUESTER_NOTE.get(lang, AGENT_REQUESTER_NOTE["en"])
    return note_in(note, stored_i18n, lang)


def note_in(note: str | None, stored_i18n: str | None, lang: str) -> str | None:
    """A ticket's resolution note in *lang*: the runbook's own translation rendered when the
    run ended (``ticket.resolution_note_i18n``, revision 0013), else ``localize`` of the
    English note (the requester-guidance and fallback texts), else the English note."""
    if note is None or lang == "en":
        return note
    if stored_i18n:
        try:
            found = json.loads(stored_i18n).get(lang)
        except (ValueError, AttributeError):
            found = None
        if isinstance(found, str) and found:
            return found
    return localize(note, lang)


def message_in(message: str | None, note: str | None, note_i18n: str | None, lang: str) -> str | None:
    """A ticket's stored message in *lang*. A resolved ticket's message is its resolution note
    (``runner.runs``: a runbook's rendered note, with values), so it is shown as the note is
    (``note_in``: the runbook's own translation); any other message as ``localize``."""
    if message is not None and message == note:
        return note_in(note, note_i18n, lang)
    return localize(message, lang)


def agent_message_in(message: str | None, note: str | None, note_i18n: str | None, lang: str) -> str | None:
    """``message_in`` as the service desk reads it: ``agent_note_in`` for the note, else ``for_agent``."""
    if message is not None and message == note:
        return agent_note_in(note, note_i18n, lang)
    return for_agent(message, lang)


# Reason codes of tickets and steps (``ticket.reason``, ``step_result.reason``: the engine's,
# the run seam's and the connectors' ``ConnectorError.reason``) in plain words, for the
# service desk's pages. A code not listed here is shown as it is.
REASONS: dict[str, dict[str, str]] = {
    # the engine and the run seam (runner.engine, runner.runs, runner.leases, runner.target_locks)
    "timeout": {"en": "no answer in time", "nl": "geen antwoord op tijd"},
    "timeout_cleanup_unconfirmed": {
        "en": "no answer in time, and stopping what it started could not be confirmed",
        "nl": "geen antwoord op tijd, en het stoppen van wat gestart was kon niet worden bevestigd",
    },
    "interrupted": {"en": "the run was interrupted", "nl": "de uitvoering werd onderbroken"},
    "nothing_ran": {"en": "no step applied", "nl": "geen stap was van toepassing"},
    "internal_error": {"en": "an internal error", "nl": "een interne fout"},
    "config_error": {"en": "Firstline is not configured correctly", "nl": "Firstline is niet goed ingesteld"},
    "config": {"en": "Firstline is not configured correctly", "nl": "Firstline is niet goed ingesteld"},
    "template_error": {
        "en": "the runbook could not prepare the step",
        "nl": "het runbook kon de stap niet voorbereiden",
    },
    "verify_failed": {"en": "the result check failed", "nl": "de controle van het resultaat mislukte"},
    "never_started": {"en": "never started", "nl": "nooit gestart"},
    "not_dispatched": {"en": "not handed to a worker", "nl": "niet aan een verwerker overgedragen"},
    "run_lost": {"en": "the run stopped before it finished", "nl": "de uitvoering stopte voordat ze klaar was"},
    "lease_expired": {"en": "the worker running it stopped", "nl": "de verwerker die het uitvoerde is gestopt"},
    "runbook_changed": {
        "en": "the runbook was changed after the request",
        "nl": "het runbook is na het verzoek gewijzigd",
    },
    "secrets_unavailable": {"en": "the secret values were not available", "nl": "de geheime waarden waren er niet"},
    "ledger_unavailable": {"en": "the database was unavailable", "nl": "de database was niet beschikbaar"},
    "target_busy": {
        "en": "another request was busy with the same target",
        "nl": "een ander verzoek was met hetzelfde doel bezig",
    },
    # connectors: reaching a target
    "unreachable": {"en": "the target could not be reached", "nl": "het doelsysteem was niet bereikbaar"},
    "auth_failed": {
        "en": "Firstline could not sign in to the target",
        "nl": "Firstline kon zich niet aanmelden bij het doelsysteem",
    },
    "invalid_credentials": {
        "en": "the user name or password is not correct",
        "nl": "de gebruikersnaam of het wachtwoord klopt niet",
    },
    "access_denied": {"en": "access denied", "nl": "geen toegang"},
    "rejected": {"en": "the target refused it", "nl": "het doelsysteem weigerde het"},
    "connector_error": {"en": "the target reported an error", "nl": "het doelsysteem meldde een fout"},
    "unexpected_output": {"en": "the target answered unexpectedly", "nl": "het doelsysteem antwoordde onverwacht"},
    "wsman_fault": {"en": "the Windows target reported an error", "nl": "het Windows-doelsysteem meldde een fout"},
    "insecure_connection": {"en": "the connection was not secure", "nl": "de verbinding was niet beveiligd"},
    "host_key_unknown": {"en": "the host key is not known", "nl": "de hostsleutel is onbekend"},
    "host_key_changed": {"en": "the host key has changed", "nl": "de hostsleutel is gewijzigd"},
    "host_key_revoked": {"en": "the host key is revoked", "nl": "de hostsleutel is ingetrokken"},
    "certificate_expired": {"en": "the certificate has expired", "nl": "het certificaat is verlopen"},
    "certificate_invalid": {"en": "the certificate is not valid", "nl": "het certificaat is niet geldig"},
    "certificate_name_mismatch": {
        "en": "the certificate is for another name",
        "nl": "het certificaat hoort bij een andere naam",
    },
    "certificate_untrusted": {"en": "the certificate is not trusted", "nl": "het certificaat wordt niet vertrouwd"},
    "invalid_input": {"en": "the input is not valid", "nl": "de invoer is niet geldig"},
    "invalid_argument": {"en": "the input is not valid", "nl": "de invoer is niet geldig"},
    "invalid_characters": {"en": "characters that are not allowed", "nl": "tekens die niet zijn toegestaan"},
    "header_injection": {"en": "characters that are not allowed", "nl": "tekens die niet zijn toegestaan"},
    "not_found": {"en": "not found", "nl": "niet gevonden"},
    "cancelled": {"en": "cancelled", "nl": "geannuleerd"},
    # connectors: printers, services, disks
    "not_running": {"en": "the service does not run", "nl": "de service draait niet"},
    "jobs_remain": {"en": "print jobs remain in the queue", "nl": "er staan nog afdruktaken in de wachtrij"},
    "printer_stopped": {"en": "the printer is stopped", "nl": "de printer staat stil"},
    "printer_not_accepting": {"en": "the printer does not accept jobs", "nl": "de printer neemt geen afdruktaken aan"},
    "cleanup_incomplete": {"en": "the clean-up did not finish", "nl": "het opruimen is niet afgerond"},
    "directory_removed": {
        "en": "the account's directory is no longer configured",
        "nl": "de directory van het account is niet meer ingesteld",
    },
    "account_gone": {"en": "the account no longer exists", "nl": "het account bestaat niet meer"},
    "account_disabled": {"en": "the account is disabled", "nl": "het account is uitgeschakeld"},
    "account_expired": {"en": "the account has expired", "nl": "het account is verlopen"},
    "path_not_canonical": {"en": "the path is not allowed", "nl": "het pad is niet toegestaan"},
    "not_allow_listed": {"en": "not on the allowed list", "nl": "staat niet op de lijst van toegestane"},
    "invalid_kind": {"en": "the kind of target is not supported", "nl": "dit soort doelsysteem wordt niet ondersteund"},
    # connectors: accounts and directories
    "unknown_account": {"en": "the account does not exist", "nl": "het account bestaat niet"},
    "invalid_account": {"en": "the account name is not valid", "nl": "de accountnaam is niet geldig"},
    "ambiguous": {"en": "more than one account matches", "nl": "meer dan één account komt overeen"},
    "lookup_failed": {"en": "the account look-up failed", "nl": "het opzoeken van het account mislukte"},
    "disabled": {"en": "the account is disabled", "nl": "het account is uitgeschakeld"},
    "expired": {"en": "the account has expired", "nl": "het account is verlopen"},
    "locked": {"en": "the account is locked", "nl": "het account is geblokkeerd"},
    "locked_temporarily": {"en": "the account is locked for a while", "nl": "het account is tijdelijk geblokkeerd"},
    "locked_idle": {
        "en": "the account is locked for not being used",
        "nl": "het account is geblokkeerd wegens ongebruik",
    },
    "unlock_failed": {"en": "the unlock did not hold", "nl": "het ontgrendelen hield geen stand"},
    "reset_incomplete": {"en": "the reset did not finish", "nl": "het opnieuw instellen is niet afgerond"},
    "privileged": {"en": "a protected account", "nl": "een beschermd account"},
    "protection_unknown": {
        "en": "whether the account is protected is not known",
        "nl": "onbekend of het account beschermd is",
    },
    "no_address": {"en": "no e-mail address", "nl": "geen e-mailadres"},
    "invalid_address": {"en": "the e-mail address is not valid", "nl": "het e-mailadres is niet geldig"},
    "recipient_refused": {"en": "the mail server refused the address", "nl": "de mailserver weigerde het adres"},
    "password_missing": {"en": "no password given", "nl": "geen wachtwoord opgegeven"},
    "unreadable_value": {"en": "a value could not be read", "nl": "een waarde kon niet worden gelezen"},
    "policy_hints_unsupported": {
        "en": "the directory does not support the password policy check",
        "nl": "de directory ondersteunt de controle van het wachtwoordbeleid niet",
    },
    "smartcard_required": {
        "en": "the account signs in with a smart card",
        "nl": "het account meldt zich aan met een smartcard",
    },
    "duplicate": {
        "en": "the same request was done by another ticket moments before",
        "nl": "hetzelfde verzoek is kort ervoor door een ander ticket gedaan",
    },
    "invalid_code": {"en": "the code to send is not valid", "nl": "de te versturen code is niet geldig"},
    "invalid_link": {"en": "the link to send is not valid", "nl": "de te versturen link is niet geldig"},
    "invalid_time": {"en": "the time to send is not valid", "nl": "het te versturen tijdstip is niet geldig"},
    "invalid_client_ip": {"en": "the address to send is not valid", "nl": "het te versturen adres is niet geldig"},
    "must_change_impossible": {
        "en": "the password could not be changed at the next sign-in",
        "nl": "het wachtwoord zou bij de volgende aanmelding niet gewijzigd kunnen worden",
    },
    "must_change_not_enforced": {
        "en": "the directory would not enforce a change at the next sign-in",
        "nl": "de directory zou geen wijziging bij de volgende aanmelding afdwingen",
    },
    "must_change_unknown": {
        "en": "the password policy could not be read",
        "nl": "het wachtwoordbeleid kon niet worden gelezen",
    },
    "too_young": {"en": "the password was changed too recently", "nl": "het wachtwoord is te kort geleden gewijzigd"},
    # password rules (connectors.password_policy: the ticket's message says which)
    "too_short": {"en": "the password is too short", "nl": "het wachtwoord is te kort"},
    "too_long": {"en": "the password is too long", "nl": "het wachtwoord is te lang"},
    "common_password": {"en": "a too common password", "nl": "een te gangbaar wachtwoord"},
    "contains_personal_info": {"en": "the password contains the name", "nl": "het wachtwoord bevat de naam"},
    "same_as_current": {"en": "the same as the current password", "nl": "hetzelfde als het huidige wachtwoord"},
    "in_history": {"en": "a password used before", "nl": "een eerder gebruikt wachtwoord"},
    "quality": {"en": "the password does not meet the rules", "nl": "het wachtwoord voldoet niet aan de regels"},
    "complexity": {"en": "the password does not meet the rules", "nl": "het wachtwoord voldoet niet aan de regels"},
    "wrong_password": {"en": "the current password is not correct", "nl": "het huidige wachtwoord klopt niet"},
    "password_expired": {"en": "the password has expired", "nl": "het wachtwoord is verlopen"},
}


def reason_text(code: str | None, lang: str) -> str | None:
    """A ticket's or step's reason code in plain words in *lang* (``REASONS``); None for a
    code not listed (the caller shows the code as it is) and for no code."""
    words = REASONS.get(code) if code else None
    return None if words is None else words.get(lang, words["en"])
