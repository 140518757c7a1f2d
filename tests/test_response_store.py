"""previous_response_id from the opt-in response store, on SQLite and PostgreSQL, through the openai SDK.

A second gateway per database runs with `response_store.enabled`; the default gateway (store off) keeps
refusing `previous_response_id` with a clear 400.
"""

from __future__ import annotations

import time

import openai
import pytest
import sqlalchemy as sa

from tests.fakes.anthropic_fake import text, tool_use
from tests.gateway import Gateway

STORE_ON = {"ORGATE_RESPONSE_STORE__ENABLED": "true", "ORGATE_RESPONSE_STORE__RETENTION_HOURS": "1"}
TOOL = {"type": "function", "name": "get_weather", "parameters": {"type": "object",
                                                                   "properties": {"city": {"type": "string"}}}}


@pytest.fixture(params=["sqlite", "postgresql"])
def stored(request, fake_session):
    url = request.getfixturevalue("pg_url") if request.param == "postgresql" else None
    gw = Gateway(fake_session.url, database_url=url, env=STORE_ON).start()
    yield gw
    gw.stop()


def _client(gw, key) -> openai.OpenAI:
    return openai.OpenAI(base_url=gw.url + "/v1", api_key=key, max_retries=0)


def _texts(body) -> list[str]:
    out = []
    for m in body["messages"]:
        for b in m["content"] if isinstance(m["content"], list) else [{"type": "text", "text": m["content"]}]:
            out.append(b.get("text") or b.get("type"))
    return out


def test_chained_turns_and_a_tool_round_trip(stored, fake):
    key = stored.create_key("chain")
    client = _client(stored, key)
    fake.push(tool_use("get_weather", {"city": "Paris"}))
    first = client.responses.create(model="claude-sonnet-4.5", input="Weather in Paris?", tools=[TOOL])
    call = next(o for o in first.output if o.type == "function_call")
    fake.push(text("It is sunny in Paris."))
    second = client.responses.create(model="claude-sonnet-4.5", previous_response_id=first.id, tools=[TOOL],
                                     input=[{"type": "function_call_output", "call_id": call.call_id,
                                             "output": "sunny"}])
    assert second.output_text == "It is sunny in Paris."
    sent = fake.last["body"]["messages"]
    assert [m["role"] for m in sent] == ["user", "assistant", "user"]
    assert sent[1]["content"][-1]["type"] == "tool_use" and sent[2]["content"][0]["type"] == "tool_result"
    # A streamed turn is kept too, and chains on.
    fake.push(text("Take sunglasses."))
    with client.responses.stream(model="claude-sonnet-4.5", previous_response_id=second.id,
                                 input="And tomorrow?") as s:
        third = s.get_final_response()
    fake.push(text("ok"))
    client.responses.create(model="claude-sonnet-4.5", previous_response_id=third.id, input="Thanks")
    assert _texts(fake.last["body"])[0] == "Weather in Paris?"
    assert "Take sunglasses." in _texts(fake.last["body"]) and _texts(fake.last["body"])[-1] == "Thanks"


def test_other_keys_store_false_and_expiry_are_not_found(stored, fake):
    key, other = stored.create_key("owner"), stored.create_key("other")
    fake.push(text("one"), text("two"))
    kept = _client(stored, key).responses.create(model="claude-sonnet-4.5", input="hi")
    unkept = _client(stored, key).responses.create(model="claude-sonnet-4.5", input="hi", store=False)
    time.sleep(0.3)  # the store writes in the background
    for client, rid in ((_client(stored, other), kept.id), (_client(stored, key), unkept.id)):
        with pytest.raises(openai.BadRequestError) as e:
            client.responses.create(model="claude-sonnet-4.5", previous_response_id=rid, input="again")
        assert e.value.code == "previous_response_not_found" and rid in e.value.message
    created, expires = stored.query("SELECT created_ms, expires_ms FROM response_store WHERE id = :i", i=kept.id)[0].values()
    assert expires - created == 3_600_000  # retention_hours: 1

    async def expire(engine):  # an hour later, as the database sees it
        async with engine.begin() as conn:
            await conn.execute(sa.text("UPDATE response_store SET expires_ms = :t WHERE id = :i"),
                               {"t": int(time.time() * 1000) - 1, "i": kept.id})

    stored._run(expire)
    with pytest.raises(openai.BadRequestError) as e:
        _client(stored, key).responses.create(model="claude-sonnet-4.5", previous_response_id=kept.id, input="x")
    assert e.value.code == "previous_response_not_found"
    rows = stored.query("SELECT id FROM response_store WHERE id = :i", i=unkept.id)
    assert rows == []  # store:false was never written
    assert len(fake.requests) == 2  # nothing not found reached the provider


def test_store_off_refuses_previous_response_id(gateway, fake, key):
    with pytest.raises(openai.BadRequestError) as e:
        _client(gateway, key).responses.create(model="claude-sonnet-4.5", previous_response_id="resp_x", input="hi")
    assert "response store" in e.value.message and e.value.param == "previous_response_id"
    assert gateway.query("SELECT COUNT(*) AS n FROM response_store")[0]["n"] == 0
    assert fake.requests == []
