"""Unlisted ids of known families are served per `unknown_models` and priced; other families are 404.

Through a real orgate and the official SDKs against the fake upstream. The shipped policy is `forward`:
the id goes to the Anthropic provider unchanged and is billed at the family's highest configured rate
(Opus: $5 / $25 per MTok, the list price of Opus 4.5-4.8 and 5, above Opus 5.5's $4 / $20).
"""

from __future__ import annotations

import anthropic
import openai
import pytest

from tests.fakes.anthropic_fake import Reply

USAGE = {"input_tokens": 1000, "output_tokens": 2000}
OPUS_FAMILY_COST = (1000 * 5_000_000 + 2000 * 25_000_000) // 1_000_000  # micro-USD at $5 / $25


def test_unknown_opus_id_is_forwarded_and_billed_at_the_family_rate(gateway, fake, key):
    fake.push(Reply(blocks=[{"type": "text", "text": "hi from a newer opus"}], usage=USAGE))
    client = anthropic.Anthropic(base_url=gateway.url + "/v1", api_key=key, max_retries=0)
    m = client.messages.create(model="claude-opus-9-1[1m]", max_tokens=4096,
                               messages=[{"role": "user", "content": "hi"}])
    assert m.content[0].text == "hi from a newer opus"
    assert fake.last["body"]["model"] == "claude-opus-9-1"  # `[1m]` stripped, id otherwise as sent
    row = gateway.ledger(1, model="claude-opus-9-1[1m]")[-1]
    assert row["public_model"] == "claude-opus-*" and row["upstream_model"] == "claude-opus-9-1"
    assert row["provider"] == "anthropic" and row["status"] == 200
    assert row["cost_micros"] == OPUS_FAMILY_COST


def test_unknown_haiku_id_on_the_openai_surface(gateway, fake, key):
    fake.push(Reply(blocks=[{"type": "text", "text": "fast"}], usage=USAGE))
    client = openai.OpenAI(base_url=gateway.url + "/v1", api_key=key, max_retries=0)
    r = client.chat.completions.create(model="claude-haiku-7-0", messages=[{"role": "user", "content": "hi"}])
    assert r.choices[0].message.content == "fast"
    assert fake.last["body"]["model"] == "claude-haiku-7-0"
    row = gateway.ledger(1, model="claude-haiku-7-0")[-1]
    # Haiku's highest configured rates: Haiku 4.5's $1 / $5 (Haiku 5.5 lists $0.10 / $0.50 below 100k).
    assert row["public_model"] == "claude-haiku-*"
    assert row["cost_micros"] == (1000 * 1_000_000 + 2000 * 5_000_000) // 1_000_000


@pytest.mark.parametrize("name", ["claude-fable-9", "claude-mythos-5", "gpt-9-turbo"])
def test_unknown_family_is_a_clear_404_in_both_dialects(gateway, fake, key, name):
    a = anthropic.Anthropic(base_url=gateway.url + "/v1", api_key=key, max_retries=0)
    with pytest.raises(anthropic.NotFoundError) as e:
        a.messages.create(model=name, max_tokens=8, messages=[{"role": "user", "content": "hi"}])
    assert e.value.body["error"]["type"] == "not_found_error" and name in e.value.body["error"]["message"]
    o = openai.OpenAI(base_url=gateway.url + "/v1", api_key=key, max_retries=0)
    with pytest.raises(openai.NotFoundError) as e2:
        o.chat.completions.create(model=name, messages=[{"role": "user", "content": "hi"}])
    assert name in e2.value.body["message"]
    assert fake.requests == []  # nothing reached the provider


def test_allowlisted_key_needs_the_family_id(gateway, fake):
    k = gateway.create_key("opus-only", allowed_models=["claude-opus-5.5"])
    a = anthropic.Anthropic(base_url=gateway.url, api_key=k, max_retries=0)
    with pytest.raises(anthropic.PermissionDeniedError):
        a.messages.create(model="claude-opus-9-1", max_tokens=8, messages=[{"role": "user", "content": "x"}])
    k2 = gateway.create_key("opus-family", allowed_models=["claude-opus-*"])
    a2 = anthropic.Anthropic(base_url=gateway.url, api_key=k2, max_retries=0)
    assert a2.messages.create(model="claude-opus-9-1", max_tokens=8,
                              messages=[{"role": "user", "content": "x"}]).content
    assert fake.last["body"]["model"] == "claude-opus-9-1"


def test_models_list_has_descriptions_and_1m_variants(gateway, key):
    a = anthropic.Anthropic(base_url=gateway.url + "/v1", api_key=key)
    page = a.models.list(limit=1000)
    by_id = {m.id: m for m in page.data}
    assert {"claude-opus-5.5", "claude-opus-5.5[1m]", "claude-haiku-5.5", "claude-sonnet-5.5[1m]"} <= set(by_id)
    assert "claude-sonnet-4.5[1m]" not in by_id  # a 200K model gets no 1M variant
    assert not any(i.endswith("*") for i in by_id)  # family ids are never listed
    raw = a.models.with_raw_response.list(extra_query={"limit": 1000}).http_response.json()["data"]
    opus = next(m for m in raw if m["id"] == "claude-opus-5.5[1m]")
    assert opus["display_name"] == "Claude Opus 5.5 (1M context)" and opus["max_input_tokens"] == 1_000_000
    assert opus["description"].startswith("1M context") and "$4 / $20 per MTok" in opus["description"]
    assert a.models.retrieve("claude-opus-5.5[1m]").id == "claude-opus-5.5[1m]"
    o = openai.OpenAI(base_url=gateway.url + "/v1", api_key=key)
    assert {m.id for m in o.models.list()} == set(by_id)
