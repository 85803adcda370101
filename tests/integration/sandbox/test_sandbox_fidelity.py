"""Sandbox over HTTP: the revisions it serves, lists, and events refused by a fault."""

from __future__ import annotations

import pytest

from consumer.sandbox import COMPATIBLE_REVISIONS, EventRejection, Sandbox
from tests.unit.klaviyo import bodies

from .helpers import ACCOUNT, BULK, SUBSCRIBE, Client

BODY = bodies.bulk(bodies.entry([bodies.event()]))
EVENTS_POINTER = "/data/attributes/events-bulk-create/data"


@pytest.mark.parametrize("revision", ["2026-04-15", "2026-07-15", "2026-10-15"])
async def test_revisions_the_contract_describes_are_accepted(
    client: Client, sandbox: Sandbox, revision: str
) -> None:
    assert revision in COMPATIBLE_REVISIONS
    reply = await client.post(BULK, BODY, headers=client.headers(revision=revision))
    assert reply.status == 202, reply.text
    assert sandbox.unique_event_count(ACCOUNT) == 1


@pytest.mark.parametrize("revision", ["2026-01-15", "2027-01-15", "2026-10-15.pre"])
async def test_revisions_it_does_not_model_are_refused_on_the_parameter(
    client: Client, sandbox: Sandbox, revision: str
) -> None:
    reply = await client.post(BULK, BODY, headers=client.headers(revision=revision))
    assert reply.status == 400
    [error] = reply.errors()
    assert error["source"] == {"parameter": "revision"}
    assert "2026-10-15" in error["detail"]
    assert sandbox.unique_event_count(ACCOUNT) == 0


async def test_subscription_to_an_unknown_list_is_400_with_a_pointer(
    client: Client, sandbox: Sandbox
) -> None:
    sandbox.add_lists(ACCOUNT, "Y6nRLr")
    unknown = await client.post(SUBSCRIBE, bodies.subscribe(list_id="NOPE01"))
    known = await client.post(SUBSCRIBE, bodies.subscribe(list_id="Y6nRLr"))
    no_list = await client.post(SUBSCRIBE, bodies.subscribe(list_id=None))
    assert (unknown.status, known.status, no_list.status) == (400, 202, 202)
    assert unknown.pointers() == ["/data/relationships/list/data/id"]
    assert "NOPE01" in unknown.errors()[0]["detail"]
    assert [s.list_id for s in sandbox.subscriptions(ACCOUNT)] == ["Y6nRLr", None]


async def test_lists_can_be_declared_through_the_admin_api(client: Client) -> None:
    created = await client.admin(
        "POST",
        "/sandbox/accounts",
        {"account_id": "m-lists", "keys": [{"key": "pk_lists_000001"}], "lists": ["L1"]},
    )
    assert created.status == 201
    assert created.json()["lists"] == ["L1"]
    reply = await client.post(SUBSCRIBE, bodies.subscribe(list_id="L2"), key="pk_lists_000001")
    assert reply.status == 400


async def test_reject_events_refuses_chosen_events_by_pointer(
    client: Client, sandbox: Sandbox
) -> None:
    sandbox.faults(ACCOUNT).reject_events(EventRejection(unique_id="u-2", detail="Bad order."))
    sandbox.faults(ACCOUNT).reject_events(EventRejection(property_name="Brand", property_value="X"))
    body = bodies.bulk(
        bodies.entry([bodies.event(unique_id="u-1"), bodies.event(unique_id="u-2")]),
        bodies.entry(
            [bodies.event(unique_id="u-3", properties={"Brand": "X"})], email="b@example.com"
        ),
    )
    reply = await client.post(BULK, body)
    assert reply.status == 400
    assert reply.pointers() == [
        f"{EVENTS_POINTER}/0/attributes/events/data/1/attributes/unique_id",
        f"{EVENTS_POINTER}/1/attributes/events/data/0/attributes/properties/Brand",
    ]
    assert [(e["code"], e["title"]) for e in reply.errors()] == [("invalid", "Invalid input.")] * 2
    assert reply.errors()[0]["detail"] == "Bad order."
    assert sandbox.unique_event_count(ACCOUNT) == 0  # one bad event fails the whole request
    sandbox.faults(ACCOUNT).clear()
    assert (await client.post(BULK, body)).status == 202


async def test_reject_events_by_metric_through_the_admin_api(client: Client) -> None:
    armed = await client.admin(
        "POST", f"/sandbox/accounts/{ACCOUNT}/faults", {"reject_events": [{"metric": "Bad"}]}
    )
    assert armed.status == 200, armed.text
    bad = bodies.bulk(bodies.entry([bodies.event(metric="Bad")]))
    reply = await client.post(BULK, bad)
    assert reply.pointers() == [
        f"{EVENTS_POINTER}/0/attributes/events/data/0/attributes/metric/data/attributes/name"
    ]
    assert (await client.post(BULK, BODY)).status == 202
    wrong = await client.admin(
        "POST", f"/sandbox/accounts/{ACCOUNT}/faults", {"reject_events": [{"colour": "red"}]}
    )
    assert wrong.status == 400
