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
    # the audit chain's verification problems (runner.ledger.audit.verify), parts joined by "; "
    (
        "the checkpoint file {name} is missing (it is kept outside the database from the first event on)",
        "het controlepuntbestand {name} ontbreekt (het wordt vanaf de eerste gebeurtenis buiten de database "
        "bewaard)",
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
