# ruff: noqa: S603, T201, E501

"""Refresh the portal's gettext catalogues: extract, update en/nl, fill Dutch from NL below.

    .venv/bin/python tools/portal_catalogues.py          # after adding or changing texts

English msgstr stay empty (gettext falls back to the msgid). A Dutch text missing here
keeps whatever the .po already has; `--check` exits 1 listing untranslated Dutch msgids.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from babel.messages.pofile import read_po, write_po

REPO = Path(__file__).resolve().parents[1]
LOCALE = REPO / "portal" / "locale"
PYBABEL = str(Path(sys.executable).with_name("pybabel"))

NL: dict[str, str] = {
    "API": "API",
    "API reference": "API-naslag",
    "API tokens": "API-tokens",
    "About me": "Over mij",
    "Account": "Account",
    "A token lets a script use the API as you, with your roles. Send it as: Authorization: Bearer <token>.": "Met een token gebruikt een script de API als u, met uw rollen. Stuur hem mee als: "
    "Authorization: Bearer <token>.",
    "Authenticate with a session cookie (and the X-CSRF-Token header on changes) or with Authorization: Bearer "
    "and a personal API token.": "Meld u aan met een sessiecookie (en bij wijzigingen de header X-CSRF-Token) of "
    "met Authorization: Bearer en een persoonlijk API-token.",
    "Back to the start page": "Terug naar de startpagina",
    "Create token": "Token maken",
    "Created": "Gemaakt",
    "Directory": "Directory",
    "Error code": "Foutcode",
    "Firstline: every fix is a vetted runbook, every run a ticket, every action in the audit log.": "Firstline: elke oplossing is een goedgekeurd runbook, elke uitvoering een ticket, elke handeling "
    "staat in het auditlog.",
    "For example alice, or alice@example.org": "Bijvoorbeeld alice, of alice@example.org",
    "Language": "Taal",
    "Last used": "Laatst gebruikt",
    "Main": "Hoofdmenu",
    "Manage your API tokens": "Uw API-tokens beheren",
    "Method": "Methode",
    "My tickets": "Mijn tickets",
    "Name": "Naam",
    "Name of the new token": "Naam van het nieuwe token",
    "Operations": "Bewerkingen",
    "Password": "Wachtwoord",
    "Path": "Pad",
    "Pick what is not working and Firstline fixes it right away, or passes it to the service desk with "
    "everything they need.": "Kies wat niet werkt: Firstline lost het meteen op, of geeft het door aan de "
    "servicedesk met alles wat die nodig heeft.",
    "Revoke": "Intrekken",
    "Revoke token": "Token intrekken",
    "Roles": "Rollen",
    "Service desk": "Servicedesk",
    "Sign in": "Aanmelden",
    "Sign in first.": "Meld u eerst aan.",
    "Sign out": "Afmelden",
    "Signing in is not possible right now: the directory does not answer. Try again later.": "Aanmelden lukt nu niet: de directory antwoordt niet. Probeer het later opnieuw.",
    "Skip to main content": "Direct naar de inhoud",
    "Something is not right": "Er klopt iets niet",
    "Something went wrong on our side. It has been logged; please try again later.": "Er ging bij ons iets mis. Het is vastgelegd; probeer het later opnieuw.",
    "Starts with": "Begint met",
    "State": "Status",
    "The list of fixes appears here.": "Hier verschijnt de lijst met oplossingen.",
    "The machine-readable OpenAPI document is at": "Het machineleesbare OpenAPI-document staat op",
    "The request could not be handled.": "Het verzoek kon niet worden afgehandeld.",
    "The request could not be read.": "Het verzoek kon niet worden gelezen.",
    "The request is too large.": "Het verzoek is te groot.",
    "The request is too large. At most %(kb)s KB can be sent.": "Het verzoek is te groot. U kunt hoogstens %(kb)s KB versturen.",
    "The ticket store is not available right now. Try again later.": "De ticketopslag is nu niet beschikbaar. Probeer het later opnieuw.",
    "The user name or password is not correct.": "De gebruikersnaam of het wachtwoord klopt niet.",
    "There is no page at this address.": "Op dit adres staat geen pagina.",
    "This address does not accept that kind of request.": "Dit adres accepteert dit soort verzoek niet.",
    "This fix is not approved in its current form; the service desk has been told.": "Deze oplossing is in deze vorm niet goedgekeurd; de servicedesk is ingelicht.",
    "This form has expired or did not come from this site. Reload the page and try again.": "Dit formulier is verlopen of kwam niet van deze site. Laad de pagina opnieuw en probeer het nog eens.",
    "This needs the %(role)s role, which your account does not have.": "Hiervoor is de rol %(role)s nodig, en die heeft uw account niet.",
    "Token": "Token",
    "Use the account you sign in to your computer with.": "Gebruik het account waarmee u zich op uw computer aanmeldt.",
    "User name": "Gebruikersnaam",
    "What it does": "Wat het doet",
    "What's wrong?": "Wat is er aan de hand?",
    "You have no active token with that number.": "U hebt geen actief token met dat nummer.",
    "Your new token. Copy it now: it is shown only this once.": "Uw nieuwe token. Kopieer het nu: het wordt alleen deze ene keer getoond.",
    "Your tickets appear here.": "Hier verschijnen uw tickets.",
    "Your tokens": "Uw tokens",
    "agent": "medewerker servicedesk",
    "auditor": "auditor",
    "employee": "medewerker",
    "revoked": "ingetrokken",
}


def main() -> int:
    pot = LOCALE / "messages.pot"
    if "--check" not in sys.argv:
        subprocess.run(
            [
                PYBABEL,
                "-q",
                "extract",
                "-F",
                "portal/babel.cfg",
                "-k",
                "gettext",
                "-k",
                "N_",
                "--no-location",
                "--sort-output",
                "-o",
                str(pot),
                ".",
            ],
            cwd=REPO,
            check=True,
        )
        subprocess.run(
            [PYBABEL, "-q", "update", "-i", str(pot), "-d", str(LOCALE), "--no-wrap", "--ignore-obsolete"],
            cwd=REPO,
            check=True,
        )
    path = LOCALE / "nl" / "LC_MESSAGES" / "messages.po"
    with path.open("rb") as fh:
        catalog = read_po(fh, locale="nl")
    missing = []
    for message in catalog:
        if not message.id or not isinstance(message.id, str):
            continue
        if message.id in NL:
            message.string = NL[message.id]
            message.flags.discard("fuzzy")
        elif not message.string or "fuzzy" in message.flags:
            missing.append(message.id)
    if "--check" not in sys.argv:
        with path.open("wb") as fh:
            write_po(fh, catalog, width=0, omit_header=False, sort_output=True)
    for m in missing:
        print(f"untranslated (nl): {m}")
    return 1 if missing and "--check" in sys.argv else 0


if __name__ == "__main__":
    raise SystemExit(main())
