"""Conversation logs through the Python client against a real mnemod:
append (one message and a batch, server and given times), listing a run in
time order across pages, role and time-range selection, search by text
within a run and a time range, delete-run, and the bad inputs."""
import pytest

import mnemo
from conftest import have_use_lite

NS = "py_convo"


@pytest.fixture(scope="module")
def log(client):
    assert have_use_lite(), "the USE-lite assets are missing: run scripts/fetch_assets"
    first = client.convo_append(NS, "trip", "Book me a flight to Lisbon for May.", time_ms=1000,
                                metadata={"channel": "web"})
    rest = client.convo_append(NS, "trip", [
        {"role": "assistant", "content": "Which airport will you leave from?", "time_ms": 2000},
        {"role": "user", "content": "From Berlin, and my cat Miso comes along.", "time_ms": 3000},
        {"role": "tool", "content": "flights: BER-LIS 09:40, 14:15", "time_ms": 4000},
    ])
    client.convo_append(NS, "other", "Remind me to water the plants.", time_ms=1500)
    return [first] + rest


def test_append_and_list_in_time_order(client, log):
    assert log[0].id.startswith("msg_") and log[0].role == "user"
    assert log[0].metadata == {"channel": "web"}
    now = client.convo_append(NS, "trip", "Thanks!")
    assert now.time_ms > 1_600_000_000_000  # the server's clock
    page = client.convo_list(NS, "trip", page_size=2)
    assert [m.content for m in page.messages] == [log[0].content, log[1].content]
    assert page.next_page_token
    everything = list(client.convo_iter(NS, "trip", page_size=2))
    assert [m.id for m in everything] == [m.id for m in log] + [now.id]
    users = list(client.convo_iter(NS, "trip", role="user", since_ms=1000, until_ms=3000))
    assert [m.time_ms for m in users] == [1000, 3000]


def test_search_by_text_and_time(client, log):
    hits = client.convo_search(NS, "what is the name of my cat", run_id="trip", top_k=2)
    assert hits[0].message.id == log[2].id
    assert 0 < hits[0].score <= 1
    hits = client.convo_search(NS, "flight to Lisbon", run_id="trip", since_ms=1500)
    assert log[0].id not in [h.message.id for h in hits]
    assert all(h.message.time_ms >= 1500 for h in hits)
    hits = client.convo_search(NS, "water the plants", top_k=1)
    assert hits[0].message.run_id == "other"


def test_delete_run_and_bad_input(client, log):
    with pytest.raises(mnemo.InvalidArgumentError):
        client.convo_append(NS, "", "no run")
    with pytest.raises(mnemo.InvalidArgumentError):
        client.convo_append(NS, "trip", "hi", role="robot")
    with pytest.raises(mnemo.InvalidArgumentError):
        client.convo_append(NS, "trip", "   ")
    with pytest.raises(mnemo.InvalidArgumentError):
        client.convo_list(NS, "trip", since_ms=5, until_ms=1)
    page = client.convo_list(NS, "trip", page_size=1)
    with pytest.raises(mnemo.InvalidArgumentError):
        client.convo_list(NS, "trip", role="user", page_token=page.next_page_token)
    with pytest.raises(mnemo.NotFoundError):
        client.convo_list("py_convo_absent", "trip")
    before = len(list(client.convo_iter(NS, "trip")))
    assert before >= 4
    assert client.convo_delete_run(NS, "trip") == before
    assert client.convo_list(NS, "trip").messages == []
    assert len(client.convo_list(NS, "other").messages) == 1
