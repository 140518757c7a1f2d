from __future__ import annotations

import base64

import pytest

from orgate.dialects.openai_responses import ReasoningEnvelope

from .conftest import SECRET

BLOCKS = [
    {"type": "thinking", "thinking": "Let me think… ünïcode", "signature": "EqQBCkYIBhgC"},
    {"type": "redacted_thinking", "data": "EmwKAhgBEgy3va3p"},
]


def test_round_trip(envelope):
    token = envelope.seal(BLOCKS, key_id="key_1")
    assert token.startswith("orgate.v1.")
    assert envelope.open(token, key_id="key_1") == BLOCKS


def test_same_secret_new_instance_opens(envelope):
    token = envelope.seal(BLOCKS, key_id="k")
    assert ReasoningEnvelope(SECRET).open(token, key_id="k") == BLOCKS


def test_tokens_are_randomized(envelope):
    assert envelope.seal(BLOCKS, key_id="k") != envelope.seal(BLOCKS, key_id="k")


def test_other_key_id_is_rejected(envelope):
    token = envelope.seal(BLOCKS, key_id="key_1")
    assert envelope.open(token, key_id="key_2") is None
    assert envelope.open(token, key_id="") is None


def test_other_secret_is_rejected(envelope):
    token = envelope.seal(BLOCKS, key_id="k")
    assert ReasoningEnvelope(b"t" * 32).open(token, key_id="k") is None


@pytest.mark.parametrize("pos", [10, 20, -1, -5])
def test_tamper_is_rejected(envelope, pos):
    token = envelope.seal(BLOCKS, key_id="k")
    chars = list(token)
    chars[pos] = "A" if chars[pos] != "A" else "B"
    assert envelope.open("".join(chars), key_id="k") is None


@pytest.mark.parametrize(
    "token",
    [
        "",
        "gAAAAABoXYZ-openai-encrypted",
        "sim-enc-8039f44cfee2337ec1e3437df017f76c",
        "orgate.v1.",
        "orgate.v1.!!!not-base64!!!",
        "orgate.v1." + base64.urlsafe_b64encode(b"x" * 40).decode(),
        "orgate.v2.AAAA",
    ],
)
def test_foreign_tokens_are_rejected(envelope, token):
    assert envelope.open(token, key_id="k") is None


def test_truncated_token_rejected(envelope):
    token = envelope.seal(BLOCKS, key_id="k")
    assert envelope.open(token[:-4], key_id="k") is None


def test_short_secret_refused():
    with pytest.raises(ValueError):
        ReasoningEnvelope(b"short")


def test_non_thinking_payload_rejected(envelope):
    token = envelope.seal([{"type": "text", "text": "x"}], key_id="k")
    assert envelope.open(token, key_id="k") is None
