# ruff: noqa: S603, T201, E501

"""Refresh the portal's gettext catalogues: extract, update en/nl, fill Dutch from NL below.

    .venv/bin/python tools/portal_catalogues.py          # after adding or changing texts

English msgstr stay empty (gettext falls back to the msgid). Dutch: a translation already
in the .po (not fuzzy) is kept; an empty or fuzzy one is filled from NL when NL has it.
`--check` changes nothing and exits 1 listing the Dutch msgids still untranslated.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from babel.messages.pofile import read_po, write_po

REPO = Path(__file__).resolve().parents[1]
LOCALE = REPO / "portal" / "locale"
PYBABEL = str(Path(sys.executable).with_name("pybabel"))

NL: dict[str, str | tuple[str, str]] = {
    "API": "API",
    "Ended": "Afgerond",
    "The sign-in name is too long: at most %(n)s characters.": "De aanmeldnaam is te lang: hoogstens %(n)s tekens.",
    "The password is too long: at most %(n)s characters.": "Het wachtwoord is te lang: hoogstens %(n)s tekens.",
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
    "Too many failed sign-ins. Try again in %(minutes)s minute.": (
        "Te veel mislukte aanmeldpogingen. Probeer het over %(minutes)s minuut opnieuw.",
        "Te veel mislukte aanmeldpogingen. Probeer het over %(minutes)s minuten opnieuw.",
    ),
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
    # --- auditor pages and KPI page (H2) ---
    "%(n)s events link up and match the signed head and checkpoints (checked %(at)s UTC).": "%(n)s gebeurtenissen sluiten op elkaar aan en kloppen met de ondertekende kop en controlepunten (gecontroleerd %(at)s UTC).",
    "Action": "Handeling",
    "Actor": "Uitvoerder",
    "Audit": "Audit",
    "Audit chain verification failed.": "Controle van de auditketen mislukt.",
    "Audit chain verified.": "Auditketen gecontroleerd: in orde.",
    "Audit events": "Auditgebeurtenissen",
    "Audit views": "Auditoverzichten",
    "Audit: events": "Audit: gebeurtenissen",
    "Audit: tickets": "Audit: tickets",
    "Bar chart with one bar per runbook; the table below gives the same values.": "Staafdiagram met één staaf per runbook; de tabel eronder geeft dezelfde waarden.",
    "CSV": "CSV",
    "Category": "Categorie",
    "Channel": "Kanaal",
    "Channel of the ticket": "Kanaal van het ticket",
    "Clear the filter": "Filter wissen",
    "Client address": "Clientadres",
    "Day": "Dag",
    "Directory of the ticket": "Directory van het ticket",
    "Empty: the last %(days)s days. At most %(max)s days. Times: for example %(examples)s; without an offset a time is UTC.": "Leeg: de laatste %(days)s dagen. Hoogstens %(max)s dagen. Tijden: bijvoorbeeld %(examples)s; zonder verschuiving is een tijd UTC.",
    "Escalation rate": "Escalatiegraad",
    "Escalation rate per runbook": "Escalatiegraad per runbook",
    "Escalation rate: decided tickets that were escalated or handed to a group, divided by the decided tickets.": "Escalatiegraad: afgehandelde tickets die geëscaleerd of aan een groep overgedragen zijn, gedeeld door de afgehandelde tickets.",
    "Events that match: %(num)s": "Gebeurtenissen die voldoen: %(num)s",
    "Events that match: more than %(num)s": "Gebeurtenissen die voldoen: meer dan %(num)s",
    "Export this filter:": "Dit filter exporteren:",
    "Filter": "Filter",
    "First event that does not hold: %(seq)s.": "Eerste gebeurtenis die niet klopt: %(seq)s.",
    "First page": "Eerste pagina",
    "First-contact resolution": "Oplossing bij eerste contact",
    "First-contact resolution rate per runbook": "Oplossing bij eerste contact per runbook",
    "First-contact resolution: resolved tickets that were never handed to a second-level group and had no repeat (another ticket from the same requester in the same category opened less than 7 days later), divided by the decided tickets (resolved, escalated or closed). Tickets younger than 7 days are provisional.": "Oplossing bij eerste contact: opgeloste tickets die nooit aan een tweedelijnsgroep zijn overgedragen en zonder herhaling (een ander ticket van dezelfde aanvrager in dezelfde categorie, minder dan 7 dagen later geopend), gedeeld door de afgehandelde tickets (opgelost, geëscaleerd of gesloten). Tickets jonger dan 7 dagen tellen voorlopig.",
    "From (inclusive)": "Vanaf (inclusief)",
    "JSON Lines": "JSON Lines",
    "KPIs": "KPI's",
    "KPIs per category": "KPI's per categorie",
    "Line chart of the number of tickets opened on each day of the range.": "Lijndiagram van het aantal geopende tickets op elke dag van de periode.",
    "Median time to resolve": "Mediane oplostijd",
    "Median time to resolve per runbook": "Mediane oplostijd per runbook",
    "Median time to resolve: the middle value of (resolved − opened) over resolved tickets; escalated and closed tickets are left out. Calendar time.": "Mediane oplostijd: de middelste waarde van (opgelost − geopend) over opgeloste tickets; geëscaleerde en gesloten tickets tellen niet mee. Kalendertijd.",
    "Next page": "Volgende pagina",
    "No tickets in this range": "Geen tickets in deze periode",
    "Nothing matches this filter.": "Niets voldoet aan dit filter.",
    "On behalf of": "Namens",
    "Opened (UTC)": "Geopend (UTC)",
    "Opened by": "Geopend door",
    "Outcome": "Uitkomst",
    "Pages": "Pagina's",
    "Per category": "Per categorie",
    "Range": "Periode",
    "Reason": "Reden",
    "Resolution code": "Oplossingscode",
    "Runbook": "Runbook",
    "Search": "Zoeken",
    "Self-service share": "Aandeel selfservice",
    "Self-service share per runbook": "Aandeel selfservice per runbook",
    "Self-service share: tickets the requester opened for themself through the portal or the API, divided by all tickets opened. Tickets an agent ran for someone else, and command-line or worker tickets, are not self-service.": "Aandeel selfservice: tickets die de aanvrager zelf via het portaal of de API opende, gedeeld door alle geopende tickets. Tickets die een medewerker voor iemand anders uitvoerde, en tickets van de opdrachtregel of een worker, zijn geen selfservice.",
    "Seq": "Volgnr.",
    "Show": "Tonen",
    "State of the ticket": "Status van het ticket",
    "Subject contains": "Onderwerp bevat",
    "Target": "Doel",
    "Target contains": "Doel bevat",
    "The values as a table": "De waarden als tabel",
    "These figures as JSON": "Deze cijfers als JSON",
    "Ticket": "Ticket",
    "Ticket number": "Ticketnummer",
    "Tickets": "Tickets",
    "Tickets that match: %(num)s": "Tickets die voldoen: %(num)s",
    "Tickets that match: more than %(num)s": "Tickets die voldoen: meer dan %(num)s",
    "Tickets opened from %(since)s to %(until)s (UTC).": "Tickets geopend van %(since)s tot %(until)s (UTC).",
    "Tickets opened per UTC calendar day in the range, whatever happened to them after.": "Geopende tickets per UTC-kalenderdag in de periode, wat er daarna ook mee gebeurde.",
    "Tickets per day": "Tickets per dag",
    "Time (UTC)": "Tijd (UTC)",
    "Times: for example %(examples)s. Without an offset a time is UTC.": "Tijden: bijvoorbeeld %(examples)s. Zonder verschuiving is een tijd UTC.",
    "Until (exclusive)": "Tot (exclusief)",
    # --- end H2 ---
    # --- H4 (agent desk) ---
    "A temporary password is made and shown to you once; it must be changed at the next sign-in.": "Er wordt een tijdelijk wachtwoord gemaakt dat u eenmalig te zien krijgt; het moet bij de volgende aanmelding gewijzigd worden.",
    "Account name": "Accountnaam",
    "Agent desk": "Agentenbalie",
    "Back to the agent desk": "Terug naar de agentenbalie",
    "Clean up disk space": "Schijfruimte opruimen",
    "Clear a printer queue": "Een printwachtrij leegmaken",
    "Closed: the requester must act": "Gesloten: de aanvrager moet iets doen",
    "Disabled: the account cannot be used.": "Uitgeschakeld: het account kan niet gebruikt worden.",
    "Enabled.": "Ingeschakeld.",
    "Escalated tickets": "Geëscaleerde tickets",
    "Expired: the account's end date has passed.": "Verlopen: de einddatum van het account is voorbij.",
    "Fix": "Oplossing",
    "Fixes on printers and servers": "Oplossingen voor printers en servers",
    "In progress": "Bezig",
    "Inputs": "Invoer",
    "Locked after too many failed sign-ins.": "Geblokkeerd na te veel mislukte aanmeldingen.",
    "Locked by an administrator.": "Geblokkeerd door een beheerder.",
    "Look up an account": "Een account opzoeken",
    "Look up": "Opzoeken",
    "Message": "Melding",
    "No escalated tickets.": "Geen geëscaleerde tickets.",
    "Not locked.": "Niet geblokkeerd.",
    "Older tickets": "Oudere tickets",
    "On behalf of (optional)": "Namens (optioneel)",
    "One-click fixes": "Oplossingen met één klik",
    "Opened": "Geopend",
    "Outputs": "Uitvoer",
    "Parameters": "Parameters",
    "Passed to the second-level team": "Doorgegeven aan de tweede lijn",
    "Protected — not available for one-click fixes.": "Beschermd — niet beschikbaar voor oplossingen met één klik.",
    "Reason (required)": "Reden (verplicht)",
    "Reason given": "Opgegeven reden",
    "Reset to a temporary password": "Tijdelijk wachtwoord instellen",
    "Resolution": "Oplossing",
    "Resolved": "Opgelost",
    "Restart a service": "Een dienst herstarten",
    "Status": "Status",
    "Step": "Stap",
    "Steps of %(number)s": "Stappen van %(number)s",
    "Subject": "Onderwerp",
    "Temporary password": "Tijdelijk wachtwoord",
    "The account owner must change it at the next sign-in.": "De eigenaar van het account moet het bij de volgende aanmelding wijzigen.",
    "The password expires on %(date)s.": "Het wachtwoord verloopt op %(date)s.",
    "The password has expired.": "Het wachtwoord is verlopen.",
    "The password is valid.": "Het wachtwoord is geldig.",
    "The password must be changed at the next sign-in.": "Het wachtwoord moet bij de volgende aanmelding gewijzigd worden.",
    "The person who reported it, for example alice@example.org. Empty: yourself.": "De persoon die het meldde, bijvoorbeeld alice@example.org. Leeg: uzelf.",
    "The sign-in name without a domain, for example alice.": "De aanmeldnaam zonder domein, bijvoorbeeld alice.",
    "The temporary password was shown once and cannot be shown again. If it was lost, reset the password again.": "Het tijdelijke wachtwoord is eenmalig getoond en kan niet opnieuw getoond worden. Is het kwijt, stel het wachtwoord dan opnieuw in.",
    "There is no account with this name in this directory.": "Er is geen account met deze naam in deze directory.",
    "This is an administrator or a service account. Hand it to the second-level team.": "Dit is een beheerders- of serviceaccount. Geef het door aan de tweede lijn.",
    "Tickets automation could not resolve, newest first, with everything gathered.": "Tickets die de automatisering niet kon oplossen, nieuwste eerst, met alles wat verzameld is.",
    "Unlock the account": "Account ontgrendelen",
    "Which one": "Welke",
    "Why you do this, for the ticket and the audit log (at most 500 characters).": "Waarom u dit doet, voor het ticket en het auditlog (hoogstens 500 tekens).",
    "Write this down now: it is shown only once and is not stored anywhere.": "Schrijf dit nu op: het wordt maar één keer getoond en nergens bewaard.",
    "The directory did not answer the look-up. Try again in a moment.": "De directory beantwoordde de opzoekvraag niet. Probeer het zo opnieuw.",
    "Acting on another person's account is done from the agent desk, as a one-click fix with a reason.": "Handelen op het account van iemand anders gaat via de agentenbalie, als oplossing met één klik met een reden.",
    "This account is protected (an administrator or a service account): it is not available for one-click fixes. Hand it to the second-level team.": "Dit account is beschermd (een beheerders- of serviceaccount): het is niet beschikbaar voor oplossingen met één klik. Geef het door aan de tweede lijn.",
    "There is no ticket with that number.": "Er is geen ticket met dat nummer.",
    "The reason must not be empty": "De reden mag niet leeg zijn",
    "The reason is too long (at most 500 characters)": "De reden is te lang (hoogstens 500 tekens)",
    "The reason contains control, invisible or text-direction characters": "De reden bevat stuur-, onzichtbare of tekstrichtingstekens",
    "The account name may hold letters, digits, '.', '_' and '-' only, start with a letter or digit and be at most 64 characters long": "De accountnaam mag alleen letters, cijfers, '.', '_' en '-' bevatten, moet met een letter of cijfer beginnen en is hoogstens 64 tekens lang",
    "This needs the agent role, which your account does not have.": "Hiervoor is de rol agent nodig, die uw account niet heeft.",
    "The directory is not one of the directories this service desk serves": "De directory is niet een van de directory's die deze servicedesk bedient",
    # --- end H4 ---
    # --- employee side: catalogue, my tickets, forgotten password / locked account (H3) ---
    "(none)": "(geen)",
    "8 digits": "8 cijfers",
    "All my tickets": "Al mijn tickets",
    "Back to all fixes": "Terug naar alle oplossingen",
    "Back to sign in": "Terug naar aanmelden",
    "Code from the e-mail": "Code uit de e-mail",
    "Each field may be sent once, as text.": "Elk veld mag één keer worden verstuurd, als tekst.",
    "Enter your code": "Vul uw code in",
    "Enter your user name.": "Vul uw gebruikersnaam in.",
    "Enter your user name. We send a one-time code to the e-mail address the organisation has on file for you. With the code you choose a new password.": "Vul uw gebruikersnaam in. We sturen een eenmalige code naar het e-mailadres dat de organisatie van u heeft. Met de code kiest u een nieuw wachtwoord.",
    "Enter your user name. We send a one-time code to the e-mail address the organisation has on file for you. With the code you unlock your account.": "Vul uw gebruikersnaam in. We sturen een eenmalige code naar het e-mailadres dat de organisatie van u heeft. Met de code ontgrendelt u uw account.",
    "Fix it": "Oplossen",
    "Fixes": "Oplossingen",
    "Forgot your password or locked out on another device? Use": "Wachtwoord vergeten of op een ander apparaat buitengesloten? Gebruik",
    "Forgot your password?": "Wachtwoord vergeten?",
    "Go to sign in": "Naar aanmelden",
    "I already have a code": "Ik heb al een code",
    "If the user name belongs to an account that can use this service, a code is on its way to the e-mail address on file. It works once and for 10 minutes.": "Als de gebruikersnaam hoort bij een account dat deze dienst kan gebruiken, is er een code onderweg naar het bekende e-mailadres. De code werkt één keer en 10 minuten lang.",
    "If the user name belongs to an account that can use this service, a code is on its way to the e-mail address on file.": "Als de gebruikersnaam hoort bij een account dat deze dienst kan gebruiken, is er een code onderweg naar het bekende e-mailadres.",
    "Locked out?": "Buitengesloten?",
    "New password": "Nieuw wachtwoord",
    "New password again": "Nieuw wachtwoord nogmaals",
    "No fix matches your search. Try other words, or contact the service desk.": "Geen oplossing past bij uw zoekopdracht. Probeer andere woorden, of neem contact op met de servicedesk.",
    "No mail after a few minutes? Check your spam folder, or contact the service desk.": "Na een paar minuten nog geen e-mail? Kijk in uw map met ongewenste mail, of neem contact op met de servicedesk.",
    "Search the fixes": "Zoek in de oplossingen",
    "See your tickets and how they ended": "Bekijk uw tickets en hoe ze afliepen",
    "Send me a code": "Stuur mij een code",
    "Send me a new code": "Stuur mij een nieuwe code",
    "Set my new password": "Mijn nieuwe wachtwoord instellen",
    "Show all": "Alles tonen",
    "Start: %(title)s": "Starten: %(title)s",
    "Steps": "Stappen",
    "The code has been used; ask for a new one to try again.": "De code is gebruikt; vraag een nieuwe aan om het opnieuw te proberen.",
    "The two new passwords are not the same. Type the same password twice.": "De twee nieuwe wachtwoorden zijn niet gelijk. Typ twee keer hetzelfde wachtwoord.",
    "There is no fix with that name that you may run.": "Er is geen oplossing met die naam die u mag starten.",
    "Unlock my account": "Mijn account ontgrendelen",
    "We sent a confirmation to your e-mail address.": "We hebben een bevestiging naar uw e-mailadres gestuurd.",
    "What": "Wat",
    "What next": "Wat nu",
    "You have no tickets yet.": "U hebt nog geen tickets.",
    "Your account can be used again. Sign in as usual.": "Uw account is weer te gebruiken. Meld u aan zoals gewoonlijk.",
    "Your new password is set. Sign in with it now.": "Uw nieuwe wachtwoord is ingesteld. Meld u er nu mee aan.",
    "Your new password:": "Uw nieuwe wachtwoord:",
    "Your tickets, newest first": "Uw tickets, nieuwste eerst",
    "does not contain your name or user name": "bevat niet uw naam of gebruikersnaam",
    "done": "klaar",
    "for example: locked, printer, password": "bijvoorbeeld: geblokkeerd, printer, wachtwoord",
    "is at least %(min)s characters long (spaces and any letters or symbols count)": "is minstens %(min)s tekens lang (spaties en alle letters of tekens tellen mee)",
    "is not a commonly used password": "is geen veelgebruikt wachtwoord",
    "is typed the same twice": "is twee keer hetzelfde getypt",
    "not yet": "nog niet",
    "or": "of",
    "This code is not valid (wrong, used or expired). Check it, or ask for a new one.": "Deze code is niet geldig (onjuist, gebruikt of verlopen). Controleer hem, of vraag een nieuwe aan.",
    "Choose a new password.": "Kies een nieuw wachtwoord.",
    "Many requests came from your network. Your browser has to finish a short check before we send a code.": "Er kwamen veel aanvragen van uw netwerk. Uw browser moet eerst een korte controle doen voordat we een code sturen.",
    "Many requests came from your network, so this form now needs JavaScript: your browser does a short calculation before the request is sent (nothing leaves this site). Turn JavaScript on and reload this page, or wait an hour and try again, or contact the service desk.": "Er kwamen veel aanvragen van uw netwerk, daarom heeft dit formulier nu JavaScript nodig: uw browser doet een korte berekening voordat de aanvraag wordt verstuurd (er gaat niets naar een andere site). Zet JavaScript aan en laad de pagina opnieuw, of wacht een uur en probeer het dan opnieuw, of neem contact op met de servicedesk.",
    "Your browser is doing a short check…": "Uw browser doet een korte controle…",
    "Check done. You can send the form.": "Controle klaar. U kunt het formulier versturen.",
    "This browser cannot do the check (it needs a secure connection). Use another browser, or contact the service desk.": "Deze browser kan de controle niet doen (er is een beveiligde verbinding nodig). Gebruik een andere browser, of neem contact op met de servicedesk.",
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
        key = message.id[0] if isinstance(message.id, (list, tuple)) else message.id
        if not key:
            continue
        untranslated = (
            not message.string
            or (isinstance(message.string, tuple) and not all(message.string))
            or "fuzzy" in message.flags
        )
        if untranslated and key in NL:  # a translation written in the .po itself wins over NL
            message.string = NL[key]
            message.flags.discard("fuzzy")
        elif untranslated:
            missing.append(key)
    if "--check" not in sys.argv:
        with path.open("wb") as fh:
            write_po(fh, catalog, width=0, omit_header=False, sort_output=True)
    for m in missing:
        print(f"untranslated (nl): {m}")
    return 1 if missing and "--check" in sys.argv else 0


if __name__ == "__main__":
    raise SystemExit(main())
