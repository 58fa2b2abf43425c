"""Runner checks that no other test would miss (issue 7, "tests that must be able to fail").

Each test here was written for a check that could be deleted with the whole suite still
green (found by mutating the check, see ``docs/testing.md``).
"""

from __future__ import annotations

import json

import pytest

from runner.redaction import REDACTED, Scrubber

# non-ASCII, quotes and a backslash: each library spelling of it differs
CREDENTIAL = 'Wächter-"²"-\\-Sommer-4711'
MULTI_LINE = "-----BEGIN KEY-----\nAAAAlineONEsecret\nBBBBlineTWOsecret\n-----END KEY-----"


@pytest.mark.parametrize(
    "shown",
    [
        json.dumps(CREDENTIAL, ensure_ascii=False)[1:-1],  # json.dumps(..., ensure_ascii=False): é stays, " → \"
        CREDENTIAL.encode("unicode_escape").decode("ascii"),  # Python's unicode_escape codec: \xe4, \\
    ],
    ids=["json-non-ascii", "unicode-escape"],
)
def test_the_scrubber_masks_the_spellings_other_libraries_use(shown: str) -> None:
    assert shown != CREDENTIAL
    masked = Scrubber([CREDENTIAL]).text(f"server said <{shown}>")
    assert masked == f"server said <{REDACTED}>"


def test_each_line_of_a_multi_line_secret_is_masked_on_its_own() -> None:
    """A remote error that quotes one line of a private key (say paramiko's) reveals that line."""
    masked = Scrubber([MULTI_LINE]).text("cannot parse 'AAAAlineONEsecret' then BBBBlineTWOsecret")
    assert "lineONE" not in masked and "lineTWO" not in masked
    assert masked.count(REDACTED) == 2
