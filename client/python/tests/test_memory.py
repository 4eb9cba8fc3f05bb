"""Agent memory through the Python client against a real mnemod: scoped
adds with duplicate handling, hybrid search where the scope and the filter
change the answer, history, paging, forget, expiry, core-memory blocks, and
every bad input of issue 15."""
import time

import pytest

import mnemo
from conftest import have_use_lite

NS = "py_mem"


@pytest.fixture(scope="module")
def mem(client):
    assert have_use_lite(), "the USE-lite assets are missing: run scripts/fetch_assets"
    alice = client.memory_add(NS, ["Alice drinks her coffee black every morning.",
                                   "Alice is allergic to peanuts.",
                                   "Alice works as a nurse at the city hospital."],
                              user_id="alice", metadata={"category": "profile", "level": 1})
    bob = client.memory_add(NS, "Bob drinks green tea and never coffee.", user_id="bob",
                            metadata={"category": "food", "level": 3})
    return {"alice": alice, "bob": bob}


def test_add_duplicates_and_scoped_search(client, mem):
    assert [r.outcome for r in mem["alice"]] == ["added"] * 3
    assert mem["bob"].memory.user_id == "bob"
    again = client.memory_add(NS, "Alice is allergic to peanuts.", user_id="alice")
    assert again.outcome == "noop"
    assert again.memory.id == mem["alice"][1].memory.id

    hits = client.memory_search(NS, "what does she drink in the morning", user_id="alice",
                                top_k=1)
    assert hits[0].memory.id == mem["alice"][0].memory.id
    # The scope changes the answer: Bob's own drink.
    hits = client.memory_search(NS, "what does she drink in the morning", user_id="bob", top_k=1)
    assert hits[0].memory.id == mem["bob"].memory.id
    # The filter changes it too, inside the search.
    hits = client.memory_search(NS, "coffee", user_id="alice",
                                filter={"NOT": {"text_missing_field": {"ne": "x"}}}, top_k=3)
    assert hits == []
    hits = client.memory_search(NS, "coffee in the morning", user_id="alice",
                                filter={"category": "profile", "level": {"lt": 2}}, top_k=3)
    assert {h.memory.user_id for h in hits} == {"alice"}
    hits = client.memory_search(NS, "coffee", agent_id="", user_id="bob",
                                filter={"OR": [{"category": "food"}, {"level": {"gte": 5}}]})
    assert [h.memory.id for h in hits] == [mem["bob"].memory.id]


def test_update_history_paging_forget(client, mem):
    mid = mem["alice"][2].memory.id
    updated = client.memory_update(NS, mid, text="Alice works as a doctor at the city hospital.",
                                   actor="test")
    assert updated.text.startswith("Alice works as a doctor")
    events = client.memory_history(NS, mid)
    assert [e.event for e in events] == ["ADD", "UPDATE"]
    assert events[1].old_text.startswith("Alice works as a nurse") and events[1].actor == "test"
    assert client.memory_get(NS, mid).text == updated.text

    page = client.memory_list(NS, user_id="alice", page_size=2)
    assert len(page.memories) == 2 and page.next_page_token
    ids = [m.id for m in client.memory_iter(NS, user_id="alice", page_size=2)]
    assert ids == sorted(ids) and len(ids) == 3
    with pytest.raises(mnemo.InvalidArgumentError):
        client.memory_list(NS, user_id="bob", page_size=2, page_token=page.next_page_token)

    client.memory_add("py_mem_tmp", ["one", "two"], run_id="r1")
    assert client.memory_forget("py_mem_tmp", run_id="r1") == 2
    assert client.memory_list("py_mem_tmp", run_id="r1").memories == []


def test_expiry_and_bad_input(client, mem):
    soon = int(time.time() * 1000) + 300
    r = client.memory_add(NS, "A short-lived note about the parking spot.", user_id="carol",
                          expires_at_ms=soon)
    time.sleep(0.6)
    with pytest.raises(mnemo.FailedPreconditionError):
        client.memory_update(NS, r.memory.id, text="changed")
    assert client.memory_search(NS, "parking spot", user_id="carol") == []
    assert client.memory_search(NS, "parking spot", user_id="carol", show_expired=True)

    with pytest.raises(mnemo.InvalidArgumentError):
        client.memory_add(NS, "no scope at all")
    with pytest.raises(mnemo.InvalidArgumentError):
        client.memory_search(NS, "anything")
    with pytest.raises(mnemo.NotFoundError):
        client.memory_get(NS, "mem_does_not_exist")
    with pytest.raises(ValueError):
        client.memory_search(NS, "x", user_id="alice", filter={"level": {"between": [1, 2]}})
    with pytest.raises(ValueError):
        client.memory_search(NS, "x", user_id="alice", filter={"AND": []})


def test_core_memory_blocks(client):
    b = client.block_set(NS, "agent7", "persona", "I am a helpful travel agent.", limit_bytes=80)
    assert b.limit_bytes == 80
    client.block_append(NS, "agent7", "persona", "I like trains.")
    client.block_insert(NS, "agent7", "persona", "Name: Ada.", line=0)
    b = client.block_replace(NS, "agent7", "persona", "trains", "night trains")
    assert b.value == "Name: Ada.\nI am a helpful travel agent.\nI like night trains."
    assert client.block_get(NS, "agent7", "persona").value == b.value
    with pytest.raises(mnemo.FailedPreconditionError) as e:
        client.block_replace(NS, "agent7", "persona", "buses", "cars")
    assert "0" in e.value.details
    with pytest.raises(mnemo.InvalidArgumentError):
        client.block_append(NS, "agent7", "persona", "x" * 100)
    with pytest.raises(mnemo.NotFoundError):
        client.block_get(NS, "agent7", "never-set")
    assert client.block_get(NS, "agent7", "persona").value == b.value
