"""Remove secrets and personal data from text we store or log about failures.

Database and remote error messages quote the data they refused (`Failing row contains
(...)`, `Key (email)=(ana@x.com) already exists.`, `invalid input syntax for type integer:
"abc"`), and validation errors quote their input (`input_value='Ana'`): that is lead PII,
so messages and bodies are scrubbed before they reach a table, a response or a log.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from shared.jsonio import db_text

MASK = "[redacted]"
_AFTER_KEY = r" already exists| is not present| is still referenced| conflicts with|\.?$"
# Every pattern does bounded work from each place it starts (a lazy run is capped, or cannot
# pass the next place a match could start), so scrubbing stays linear in the text: a remote
# controls the bodies scrubbed here, and a backtracking pattern would pin the process.
_PATTERNS = (
    (re.compile(r"(Failing row contains )\(.*\)", re.S), r"\1(" + MASK + ")"),
    # A key value that does not end on its line within 500 characters, at the words that
    # follow it in PostgreSQL's messages (a long one, or one across lines: PostgreSQL cuts
    # neither), masked with all that follows it before the patterns below could take a
    # parenthesis within it for its end: better a message cut short than a lead quoted.
    (re.compile(r"(?is)(\bkey (?>\([^\n]{0,200}?\)=\())"
                r"(?![^\n]{0,500}?\)(?:" + _AFTER_KEY + r")).*"), r"\1" + MASK + ")"),
    # Key (email)=(x) already exists / conflicts with existing key (email)=(y); the key may be
    # an expression, `(lower(name::text))`, and the value hold parentheses, `(Ana (Bia) Souza)`,
    # so the value runs to the words that follow it in PostgreSQL's messages ...
    (re.compile(r"(?i)(\bkey (?>\([^\n]{0,200}?\)=\())[^\n]{0,500}?\)(?=" + _AFTER_KEY + ")", re.M),
     r"\1" + MASK + ")"),
    # ... or, in a message cut short, to the first closing parenthesis and a separator.
    (re.compile(r"(?i)(\bkey \([^)\n]{0,200}\))=\([^\n]{0,500}?\)(?=[ .,;]|$)", re.M),
     r"\1=(" + MASK + ")"),
    (re.compile(r'(\bvalue )"(?:[^"\\]|\\.)*"'), r'\1"' + MASK + '"'),  # value "x" is out of range
    (re.compile(r'(: )"(?:[^"\\]|\\.)*"'), r'\1"' + MASK + '"'),  # invalid input syntax ...: "x"
    (re.compile(r"(: )'(?:[^'\\]|\\.)*'"), r"\1'" + MASK + "'"),  # Invalid isoformat string: 'x'
    # pydantic's input, whole (an object or a list too), up to its type
    (re.compile(r"(input_value=)(?:(?!input_value=).)*?(?=, input_type=)", re.S), r"\1" + MASK),
    (re.compile(r"(input_value=)(?:'(?:[^'\\]|\\.)*'|\"(?:[^\"\\]|\\.)*\"|[^,\s]+)"), r"\1" + MASK),
    (re.compile(r"eyJ[\w-]+\.[\w-]+\.[\w-]*"), MASK),  # JWTs
    (re.compile(r"\bsb_(?:secret|publishable)_[\w-]+"), MASK),
    (re.compile(r"(?i)\b(bearer|apikey)\s*[:=]?\s*[\w.\-]{8,}"), r"\1 " + MASK),
    (re.compile(r"(?<![\w.+-])[\w.+-]+@[\w-]+(?:\.[\w-]+)+"), MASK),  # e-mails (from a run's start)
    (re.compile(r"\+?\d[\d\s()./-]{7,}\d"), MASK),  # phones, documents (12.345.678/0001-90)
)  # fmt: skip
MAX_TEXT = 2000
_SCANNED = 4 * MAX_TEXT  # room for a redaction to shorten the text before it is cut


def scrub_text(text: str, secrets: Iterable[str] = ()) -> str:
    """The text without known secrets, tokens, quoted values, e-mails or phone numbers."""
    # Stored in text and jsonb, which hold no NUL: gone before matching.
    out: str = mask_secrets(db_text(text), secrets)
    out = out[:_SCANNED]  # what is kept is shorter still: the rest need not be read
    for pattern, replacement in _PATTERNS:
        out = pattern.sub(replacement, out)
    return out[:MAX_TEXT]


def scrub_value(value: Any, secrets: Iterable[str] = ()) -> Any:
    """Scrub every string inside a JSON-like value (dict keys are kept, made storable)."""
    known = tuple(secrets)
    if isinstance(value, str):
        return scrub_text(value, known)
    if isinstance(value, dict):
        return {db_text(str(k)): scrub_value(v, known) for k, v in value.items()}
    if isinstance(value, list):
        return [scrub_value(v, known) for v in value]
    return value


def mask_secrets(value: Any, secrets: Iterable[str]) -> Any:
    """Only the known secrets masked, in every string of a JSON-like value (keys too): for
    values that must stay usable, like the URLs of an output, which the patterns of
    `scrub_value` would break (a 19-digit task id reads as a phone number)."""
    known = tuple(s for s in secrets if s)
    if isinstance(value, str):
        for secret in known:
            value = value.replace(secret, MASK)
        return value
    if isinstance(value, dict):
        return {mask_secrets(str(k), known): mask_secrets(v, known) for k, v in value.items()}
    if isinstance(value, list):
        return [mask_secrets(v, known) for v in value]
    return value
