"""The SSRF guard: refused on save and at connect time, with no socket opened."""

from __future__ import annotations

import socket

import pytest
from django.core.exceptions import ValidationError

from connectors import hub
from connectors.engine.ssrf import address_block_reason, check_base_url
from connectors.models import ApiCall, Connection

REFUSED_HOSTS = [
    "127.0.0.1",
    "127.1",  # short form
    "2130706433",  # decimal
    "0x7f.1",  # hex
    "017700000001",  # octal
    "0177.0.0.1",
    "10.0.0.5",
    "172.16.3.4",
    "192.168.1.1",
    "169.254.169.254",  # cloud metadata, link-local
    "100.64.0.1",  # carrier-grade NAT
    "[::1]",
    "[::ffff:127.0.0.1]",  # IPv4-mapped IPv6
    "[::ffff:7f00:1]",
    "[fe80::1]",
    "[fc00::1]",
    "[64:ff9b::a00:1]",  # NAT64 of 10.0.0.1
    "[2002:c0a8:101::1]",  # 6to4 of 192.168.1.1
]
ALWAYS_REFUSED = ["0.0.0.0", "[::]", "224.0.0.1", "[ff02::1]", "240.0.0.1"]


@pytest.mark.parametrize("host", REFUSED_HOSTS + ALWAYS_REFUSED)
def test_private_and_special_addresses_are_refused_on_save(host):
    with pytest.raises(ValueError, match="refused address"):
        check_base_url(f"https://{host}/api", production=True, allow_private=False)


@pytest.mark.parametrize("host", ALWAYS_REFUSED)
def test_unspecified_multicast_and_reserved_are_refused_even_when_private_is_allowed(host):
    with pytest.raises(ValueError, match="unspecified, multicast or reserved"):
        check_base_url(f"http://{host}/api", production=False, allow_private=True)


def test_public_addresses_pass_and_private_ones_pass_when_allowed():
    assert address_block_reason("93.184.215.14", allow_private=False) is None
    assert address_block_reason("2606:4700::1", allow_private=False) is None
    assert address_block_reason("127.0.0.1", allow_private=True) is None
    check_base_url("http://127.0.0.1:8000/api", production=False, allow_private=True)


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("http://93.184.215.14/api", "must use https"),
        ("ftp://93.184.215.14/", "must start with https"),
        ("https://user:pw@93.184.215.14/", "no user name or password"),
        ("https://93.184.215.14/api?key=1", "no query string"),
        ("https://93.184.215.14:99999/", "port"),
    ],
)
def test_malformed_base_urls_get_a_clear_message(url, message):
    with pytest.raises(ValueError, match=message):
        check_base_url(url, production=True, allow_private=False)


@pytest.mark.django_db
def test_the_model_refuses_a_private_base_url_when_not_allowed(settings):
    settings.HUB_ALLOW_PRIVATE_NETWORKS = False
    connection = Connection(name="x", slug="x", base_url="https://169.254.169.254/latest")
    with pytest.raises(ValidationError) as caught:
        connection.full_clean()
    assert "link-local" in str(caught.value.message_dict["base_url"])


@pytest.fixture
def connects(monkeypatch):
    """Every socket.connect() made during the test, recorded (and still performed)."""
    seen: list[object] = []
    real_connect = socket.socket.connect

    def recording_connect(self, address):
        seen.append(address)
        return real_connect(self, address)

    monkeypatch.setattr(socket.socket, "connect", recording_connect)
    return seen


@pytest.mark.django_db(transaction=True)
def test_a_refused_address_opens_no_socket_at_call_time(
    api_connection, partner, settings, connects
):
    # given a connection to 127.0.0.1 saved while private networks were allowed
    settings.HUB_ALLOW_PRIVATE_NETWORKS = False
    # when it is called after the setting was turned off
    with pytest.raises(hub.BlockedURLError, match="loopback"):
        hub.call("partner", "GET", "/contacts")
    # then no connection was attempted and the refusal is logged
    assert connects == []
    assert partner.requests == []
    assert ApiCall.objects.get().error_kind == "blocked_url"


@pytest.mark.django_db(transaction=True)
def test_dns_rebinding_is_caught_on_the_address_actually_connected(
    api_connection, partner, settings, connects, monkeypatch
):
    # given a host name that resolved to a public address when the connection was saved …
    settings.HUB_ALLOW_PRIVATE_NETWORKS = False
    port = partner.server_address[1]
    answers = iter(
        [
            [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("93.184.215.14", port))],
            [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.1", port))],
        ]
    )
    real_getaddrinfo = socket.getaddrinfo

    def rebinding_dns(host, *args, **kwargs):
        # the resolver is the one boundary nothing real can play here: a name that changes
        if host == "rebind.example.test":
            return next(answers)
        return real_getaddrinfo(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", rebinding_dns)
    check_base_url(f"http://rebind.example.test:{port}", production=False)
    api_connection.base_url = f"http://rebind.example.test:{port}/v1"
    api_connection.save()
    # … and to loopback at call time
    with pytest.raises(hub.BlockedURLError, match=r"127\.0\.0\.1 is loopback"):
        hub.call("partner", "GET", "/contacts")
    assert connects == [] and partner.requests == []
