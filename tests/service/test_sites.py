"""The Host and Origin rules of service.sites, as pure functions (the routes under attack:
tests/security/test_cross_site.py)."""

from __future__ import annotations

import pytest

from service.sites import HOST_CACHE_SIZE, HostCheck, check_allowed_host, cross_site, request_site


@pytest.mark.parametrize(
    ("host", "allowed", "name", "answered"),
    [("127.0.0.1", (), b"127.0.0.1:8000", True), ("127.0.0.1", (), b"127.255.0.9", True),
     ("127.0.0.1", (), b"[::1]", True), ("127.0.0.1", (), b"::1", True),
     ("127.0.0.1", (), b"[::ffff:127.0.0.1]:80", True), ("127.0.0.1", (), b"Localhost", True),
     ("127.0.0.1", (), b"localhost.:8000", True), ("127.0.0.1", (), b"", False),
     ("127.0.0.1", (), b"192.168.1.4", False), ("127.0.0.1", (), b"[", False),
     ("127.0.0.1", (), b"evil.example:8000", False), ("127.0.0.1", (), b"0.0.0.0:8000", False),
     ("0.0.0.0", (), b"0.0.0.0:8000", True), ("::", (), b"[2001:db8::1]", True),
     ("", (), b"203.0.113.9:8000", True), ("0.0.0.0", (), b"evil.example", False),
     ("192.168.1.4", (), b"192.168.1.4:8000", True), ("192.168.1.4", (), b"192.168.1.5", False),
     ("127.0.0.1", ("voice.example.org",), b"VOICE.example.org:443", True),
     ("127.0.0.1", ("*.example.org",), b"a.example.org", True),
     ("127.0.0.1", ("*.example.org",), b"example.org", False),
     ("127.0.0.1", ("*.example.org",), b"aexample.org", False)],
)  # fmt: skip
def test_which_names_are_answered(
    host: str, allowed: tuple[str, ...], name: bytes, answered: bool
) -> None:
    assert HostCheck(host, allowed).allows(name) is answered


def test_a_request_without_a_host_is_answered() -> None:
    assert HostCheck("127.0.0.1", ()).allows(None) is True


def test_the_verdicts_kept_are_bounded() -> None:
    check = HostCheck("127.0.0.1", ())

    for i in range(HOST_CACHE_SIZE + 10):
        assert check.allows(f"n{i}.example".encode()) is False

    assert len(check._verdicts) == HOST_CACHE_SIZE


@pytest.mark.parametrize(
    ("entry", "name"),
    [("Voice.Example.org", "voice.example.org"), (" *.lan. ", "*.lan"), ("::1", "::1"),
     ("10.0.0.7", "10.0.0.7")],
)  # fmt: skip
def test_allowed_host_entries(entry: str, name: str) -> None:
    assert check_allowed_host(entry) == name


@pytest.mark.parametrize("entry", ["http://voice.example.org", "voice.example.org:8443",
                                   "a.*.example.org", "*example.org", "voice/x"])  # fmt: skip
def test_allowed_host_entries_that_are_no_names(entry: str) -> None:
    with pytest.raises(ValueError) as error:
        check_allowed_host(entry)

    assert str(error.value) == (
        f"VOICEID_ALLOWED_HOSTS entry {entry!r} is not a host name: give names or addresses "
        "without a scheme or port, such as 'voice.example.org' or '*.example.org'"
    )


def test_a_bare_star_is_refused() -> None:
    with pytest.raises(ValueError, match="would let any name, and so any DNS-rebinding page"):
        check_allowed_host("*")


@pytest.mark.parametrize(
    ("scheme", "host", "origin", "fetch_site", "why"),
    [("http", b"127.0.0.1:8000", None, None, None),
     ("http", b"127.0.0.1:8000", b"http://127.0.0.1:8000", b"same-origin", None),
     ("https", b"voice.example.org", b"https://voice.example.org:443", None, None),
     ("http", b"voice.example.org:80", b"http://voice.example.org", None, None),
     ("ws", b"localhost:8000", b"http://localhost:8000", None, None),
     ("wss", b"voice.example.org", b"https://voice.example.org", None, None),
     ("http", None, None, b"none", None),
     ("http", b"127.0.0.1:8000", b"http://localhost:8000", None,
      "it came from a page of 'http://localhost:8000' (its Origin), not from "
      "'http://127.0.0.1:8000'"),
     ("http", b"voice.example.org", b"https://voice.example.org", None,
      "it came from a page of 'https://voice.example.org' (its Origin), not from "
      "'http://voice.example.org'"),
     ("http", b"127.0.0.1:8000", None, b"cross-site",
      "the browser says it is cross-site (Sec-Fetch-Site)"),
     ("http", b"127.0.0.1:8000", b"http://127.0.0.1:8000", b"same-site",
      "the browser says it is same-site (Sec-Fetch-Site)")],
)  # fmt: skip
def test_which_requests_are_cross_site(
    scheme: str, host: bytes | None, origin: bytes | None, fetch_site: bytes | None,
    why: str | None,
) -> None:  # fmt: skip
    assert cross_site(scheme, host, origin, fetch_site) == why


def test_the_headers_are_read_in_one_pass_and_the_first_of_each_counts() -> None:
    scope = {"headers": [(b"origin", b"http://a"), (b"host", b"h:1"), (b"origin", b"http://b"),
                         (b"x-api-key", b"k"), (b"sec-fetch-site", b"none")]}  # fmt: skip

    assert request_site(scope) == (b"h:1", b"http://a", b"none")
