"""What the scrubber removes from error text before it is stored, answered or logged."""

from __future__ import annotations

import time

import pytest

from shared.scrub import mask_secrets, scrub_text, scrub_value


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Key (email)=(ana@x.com) already exists.", "Key (email)=([redacted]) already exists."),
        (
            "Key (external_id)=(Maria (filha)) conflicts with existing key (external_id)=(Joana).",
            "Key (external_id)=([redacted]) conflicts with existing key (external_id)=([redacted]).",
        ),
        (
            'Key (tenant_id, id)=(3f2a, 7) is not present in table "leads".',
            'Key (tenant_id, id)=([redacted]) is not present in table "leads".',
        ),
        (  # a unique index on an expression, and a value holding parentheses
            "Key (lower(name::text))=(ana maria) already exists.",
            "Key (lower(name::text))=([redacted]) already exists.",
        ),
        (
            "Key (name)=(Ana (Bia) Souza) already exists.",
            "Key (name)=([redacted]) already exists.",
        ),
        ("Key (name)=(Ana (Bia) Souza)", "Key (name)=([redacted])"),  # a message cut short
        (
            'Key (id)=(5) is still referenced from table "leads".',
            'Key (id)=([redacted]) is still referenced from table "leads".',
        ),
        (  # across lines, a line ending in a parenthesis: all that follows goes
            "Key (address)=(Rua X (fundos)\nApto 4 - Maria) already exists.",
            "Key (address)=([redacted])",
        ),
        ("Empresa 12.345.678/0001-90 sem permissão", "Empresa [redacted] sem permissão"),
        ("Invalid isoformat string: 'Maria Sigilosa'", "Invalid isoformat string: '[redacted]'"),
        (
            "Input should be a valid integer [type=int_type, input_value={'name': 'Maria',"
            " 'address': 'Rua das Flores'}, input_type=dict]",
            "Input should be a valid integer [type=int_type, input_value=[redacted],"
            " input_type=dict]",
        ),
        (
            'value "Maria" is out of range for type integer',
            'value "[redacted]" is out of range for type integer',
        ),
        (
            'invalid input syntax for type integer: "abc"',
            'invalid input syntax for type integer: "[redacted]"',
        ),
        (
            "Input should be a valid integer [type=int_parsing, input_value='Maria Sigilosa', x]",
            "Input should be a valid integer [type=int_parsing, input_value=[redacted], x]",
        ),
        ("Failing row contains (1, Maria, x).", "Failing row contains ([redacted])."),
        ('null value in column "n" of relation "t"', 'null value in column "n" of relation "t"'),
    ],
)
def test_quoted_values_are_redacted_and_the_rest_kept(text: str, expected: str) -> None:
    assert scrub_text(text) == expected


@pytest.mark.parametrize(
    "text",
    ["input_value=" * 50_000, "key ()=(" * 50_000, "Key (id)=(1) is duplicated. " * 20_000,
     "Failing row contains (" * 30_000, "1-" * 300_000, "a.b+c-" * 100_000 + "@x.io"],
)  # fmt: skip
def test_a_hostile_text_cannot_pin_the_scrubber(text: str) -> None:
    """A remote controls some of the bodies scrubbed: patterns that backtracked took minutes
    (hours, one of them) on a few hundred kB. Not a speed target: a guard against a hang,
    with a margin of hundreds over what it takes."""
    started = time.monotonic()
    assert len(scrub_text(text)) <= 2000
    assert time.monotonic() - started < 5


def test_what_is_scrubbed_is_storable() -> None:
    """Scrubbed text goes to text and jsonb columns, which hold no NUL (nor lone surrogate)."""
    assert scrub_text("JWT invalid\x00 \ud800!") == "JWT invalid \ufffd!"
    assert scrub_value({"message\x00": ["a\x00b"]}) == {"message": ["ab"]}
    # dropped before the patterns look, so a NUL cannot split what they would find
    assert scrub_text("contact ana@x\x00.com failed") == "contact [redacted] failed"
    assert scrub_text("secret ab\x00cdef", ["abcdef"]) == "secret [redacted]"


def test_mask_secrets_masks_only_the_secrets_and_keeps_urls_usable() -> None:
    """RunningHub's outputs are URLs: only the key goes, a task id is not a phone number."""
    url = "https://cdn.example/1987654321098765432/o.png?apiKey=rh-key-123456"
    assert mask_secrets({"fileUrl": url, "rh-key-123456": [url, 7]}, ["rh-key-123456", ""]) == {
        "fileUrl": "https://cdn.example/1987654321098765432/o.png?apiKey=[redacted]",
        "[redacted]": ["https://cdn.example/1987654321098765432/o.png?apiKey=[redacted]", 7],
    }


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("said: Authorization: Bearer abc123def", "said: Authorization: Bearer [redacted]"),
        ("request with ApiKey=k3y.abcd12 refused", "request with ApiKey [redacted] refused"),
        ("header apikey: 0123456789abcdef", "header apikey [redacted]"),
        ("key sb_secret_AbC-123 and sb_publishable_XyZ_9", "key [redacted] and [redacted]"),
        ("token eyJhbGciOiJub25lIn0.eyJzdWIiOiIxIn0. refused", "token [redacted] refused"),
        ("token eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2ln refused", "token [redacted] refused"),
        ("mail ana.maria+x@mail.example.com bounced", "mail [redacted] bounced"),
        ("call +55 (11) 98765-4321 or 9876-5432 now", "call [redacted] or [redacted] now"),
    ],
)  # fmt: skip
def test_tokens_keys_and_contacts_in_free_text_are_redacted(text: str, expected: str) -> None:
    """Credentials (a bearer token, a BomControle ApiKey, Supabase keys, a JWT signed or not)
    and contacts (an e-mail, a phone, a short local number) quoted by a remote or an
    exception never reach a log line, a stored error or an answer."""
    assert scrub_text(text) == expected


def test_what_is_cut_at_the_length_limit_is_scrubbed_first() -> None:
    """The text is cut to its 2000 characters after the patterns ran: cut first, an
    e-mail straddling the cut would lose the part that makes it one and be kept."""
    out = scrub_text("x" * 1990 + " ana.maria@mail.example.com")
    assert len(out) == 2000 and "ana.maria" not in out


def test_a_failing_row_across_lines_is_redacted_whole() -> None:
    """A value holding a newline (an address) spreads the row PostgreSQL quotes over lines."""
    text = "Failing row contains (1, Rua X\nApto 4 - Maria, x)."
    assert scrub_text(text) == "Failing row contains ([redacted])."
