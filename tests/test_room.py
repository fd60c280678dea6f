"""ui/room.py: the link a teacher shares reaches the server from the students' phones."""

from __future__ import annotations

import pytest

from ui import room

PAGE = "http://localhost:8501/explore?explore_level=0.5"


def test_a_page_opened_on_localhost_is_shared_with_the_network_address():
    got = room.reach(PAGE, ["192.0.2.7"])
    assert got.urls == ("http://192.0.2.7:8501/explore?explore_level=0.5",)
    assert "only this computer can reach" in got.note and not got.warning


def test_with_several_networks_every_address_is_offered_streamlits_first():
    got = room.reach("http://127.0.0.1:8501/?present=1", ["192.0.2.7", "198.51.100.3"])
    assert got.urls == ("http://192.0.2.7:8501/?present=1", "http://198.51.100.3:8501/?present=1")


def test_without_a_network_address_the_note_says_so():
    got = room.reach(PAGE, [])
    assert got.urls == (PAGE,) and got.warning
    assert "no network address besides localhost" in got.note


def test_a_server_listening_on_loopback_only_keeps_the_link_and_says_how_to_serve_the_room():
    got = room.reach("http://127.0.0.1:40123/", ["192.0.2.7"], listens_on="127.0.0.1")
    assert got.urls == ("http://127.0.0.1:40123/",) and got.warning
    assert "--server.address 0.0.0.0" in got.note


def test_an_address_the_room_can_reach_already_is_shared_as_it_is():
    url = "http://192.0.2.7:8501/latent?latent_t=0.5"
    assert room.reach(url, ["198.51.100.3"]) == room.Reach((url,))


def test_the_operators_public_url_wins_over_everything():
    got = room.reach(PAGE, ["192.0.2.7"], public_url="https://class.example.org/ae/")
    assert got.urls == ("https://class.example.org/ae/explore?explore_level=0.5",)
    assert got.note is None
    got = room.reach(PAGE, ["192.0.2.7"], server_address="class.example.org")
    assert got.urls == ("http://class.example.org:8501/explore?explore_level=0.5",)


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("localhost", True),
        ("127.0.0.1", True),
        ("127.4.5.6", True),
        ("[::1]", True),
        ("app.localhost", True),
        ("192.0.2.7", False),
        ("example.org", False),
        ("", False),
    ],
)
def test_loopback_hosts_are_recognised(host, loopback):
    assert room.is_loopback(host) is loopback


def test_this_machines_addresses_are_never_loopback():
    addresses = room.network_addresses()
    assert all(not room.is_loopback(a) for a in addresses) and len(set(addresses)) == len(addresses)


def test_the_environment_names_the_public_url_and_a_bad_one_is_ignored(monkeypatch):
    monkeypatch.setenv(room.PUBLIC_URL_ENV, "https://class.example.org")
    assert room.reach_here(PAGE).urls == ("https://class.example.org/explore?explore_level=0.5",)
    monkeypatch.setenv(room.PUBLIC_URL_ENV, "javascript:alert(1)")
    assert not room.reach_here(PAGE).urls[0].startswith("javascript")
