"""Another site's page against a keyless server on loopback: every write it can send without a
CORS preflight is refused (403), as is every request sent under a name the server does not
answer to (421: DNS rebinding); the server's own page and clients that are no page (curl) keep
working. The Chromium version of the attack: tests/browser/test_cross_site.py."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from starlette.applications import Starlette
from starlette.routing import WebSocketRoute
from starlette.testclient import WebSocketDenialResponse
from starlette.types import Message
from starlette.websockets import WebSocket, WebSocketDisconnect

from service.auth import AuthMiddleware
from service.settings import Settings
from tests.helpers import LOOPBACK_URL, MODEL_DIR, ClientFactory

KEY = "s3cret-key"
OWN = "http://127.0.0.1"  # the test clients' origin: tests.helpers.LOOPBACK_URL
EVIL = "http://evil.example"
SOCKET_URL = "ws://127.0.0.1/listen"  # a WebSocket of the page at OWN
CROSS_SITE = (
    "changes (enrolling, training, activating, reloading) are taken only from this server's "
    "own page or from clients that are no web page (curl, scripts), and {why}: another site's "
    "page may not change this server. To script it, send no Origin header, or set "
    "VOICEID_API_KEY and send the key in the X-API-Key header"
)
BAD_HOST = (
    "Host {host!r} is not a name this server answers to (127.0.0.1, localhost and loopback "
    "addresses): a page may have reached it under a name of its own, as DNS rebinding does. If a "
    "proxy or DNS name should reach it, add the name to VOICEID_ALLOWED_HOSTS (comma-separated; "
    "'*.example.org' allows its subdomains)"
)
FROM_EVIL = CROSS_SITE.format(why=f"it came from a page of {EVIL!r} (its Origin), not from {OWN!r}")

# Every route that changes something, as a page would send it without a preflight.
WRITES = {
    "upload clips": ("POST", "/speakers/Mallory/clips"),
    "delete a clip": ("DELETE", "/speakers/Mallory/clips/0123456789abcdef"),
    "train": ("POST", "/train"),
    "delete a speaker": ("DELETE", "/speakers/Mallory"),
    "activate": ("POST", "/models/{version}/activate"),
    "reload": ("POST", "/admin/reload"),
}
HOSTILE = {
    "cross-site Origin": ({"origin": EVIL}, 403, FROM_EVIL),
    "another port of localhost": (
        {"origin": "http://127.0.0.1:9999", "sec-fetch-site": "same-site"},
        403,
        CROSS_SITE.format(
            why=f"it came from a page of 'http://127.0.0.1:9999' (its Origin), not from {OWN!r}"
        ),
    ),
    "a sandboxed page": (
        {"origin": "null"},
        403,
        CROSS_SITE.format(why=f"it came from a page of 'null' (its Origin), not from {OWN!r}"),
    ),
    "Sec-Fetch-Site cross-site": (
        {"sec-fetch-site": "cross-site"},
        403,
        CROSS_SITE.format(why="the browser says it is cross-site (Sec-Fetch-Site)"),
    ),
    "Sec-Fetch-Site same-site": (
        {"sec-fetch-site": "same-site"},
        403,
        CROSS_SITE.format(why="the browser says it is same-site (Sec-Fetch-Site)"),
    ),
    "bad Host": ({"host": "attacker.example"}, 421, BAD_HOST.format(host="attacker.example")),
    "rebinding (Host and Origin agree)": (
        {"host": "attacker.example:8000", "origin": "http://attacker.example:8000"},
        421,
        BAD_HOST.format(host="attacker.example:8000"),
    ),
}


Files = list[tuple[str, tuple[str, bytes, str]]]  # a multipart form's files, as clients take them


@pytest.fixture
def clip_files(demo_clips: dict[str, list[bytes]]) -> Files:
    return [("files", (f"{i}.wav", clip, "audio/wav"))
            for i, clip in enumerate(demo_clips["Stranger"])]  # fmt: skip


def _request(
    client: TestClient, route: str, headers: dict[str, str], files: Files
) -> tuple[int, object]:
    """Send ``route``'s request as a page can without a preflight: the clips as a form's
    multipart upload, ``/train`` with a ``text/plain`` body."""
    method, path = WRITES[route]
    path = path.format(version=client.get("/model").json()["version"])
    if route == "upload clips":
        response = client.request(method, path, files=files, headers=headers)
    elif route == "train":
        plain = {"content-type": "text/plain"} | headers
        response = client.request(method, path, content=b"x", headers=plain)
    else:
        response = client.request(method, path, headers=headers)
    return response.status_code, response.json()


@pytest.mark.parametrize("attack", HOSTILE)
@pytest.mark.parametrize("route", WRITES)
def test_a_write_from_another_site_or_name_is_refused(
    make_client: ClientFactory, tmp_path: Path, clip_files: Files, route: str, attack: str
) -> None:
    client = make_client()
    headers, status, detail = HOSTILE[attack]

    answer = _request(client, route, headers, clip_files)

    assert answer == (status, {"detail": detail})
    assert not (tmp_path / "speakers").exists()  # no clip stored, no job started


@pytest.mark.parametrize(
    "headers",
    [{}, {"origin": OWN}, {"origin": OWN, "sec-fetch-site": "same-origin"},
     {"sec-fetch-site": "none"}, {"origin": "HTTP://127.0.0.1:80"},
     {"host": "localhost:8000", "origin": "http://localhost:8000"}],
    ids=["no Origin (curl)", "own Origin", "own Origin, same-origin", "typed by the user",
         "own Origin, spelt otherwise", "own page on localhost"],
)  # fmt: skip
def test_the_own_page_and_clients_that_are_no_page_may_write(
    make_client: ClientFactory, clip_files: Files, headers: dict[str, str]
) -> None:
    client = make_client()

    answers = {route: _request(client, route, headers, clip_files)[0] for route in WRITES}

    # Each route ran, in this order: no such clip; a store with 3 clips of Mallory is refused
    # training on its merits; then Mallory is deleted.
    assert answers == {"upload clips": 200, "delete a clip": 404, "train": 422,
                       "delete a speaker": 200, "activate": 200, "reload": 200}  # fmt: skip


def test_the_reproduction_of_the_issue_is_refused(
    make_client: ClientFactory, tmp_path: Path, clip_files: Files
) -> None:
    client = make_client()
    evil = {"origin": EVIL}
    version = client.get("/model").json()["version"]

    upload = client.post("/speakers/Steve/clips", files=clip_files, headers=evil)
    train = client.post("/train", content=b"{}", headers={"content-type": "text/plain", **evil})
    activate = client.post(f"/models/{version}/activate", headers=evil)
    rebound = {"host": "attacker.example", "origin": "http://attacker.example"}
    delete = client.delete("/speakers/Steve", headers=rebound)
    read = client.get("/speakers", headers=rebound)

    assert [r.status_code for r in (upload, train, activate, delete, read)] == [403] * 3 + [421] * 2
    assert client.get("/speakers").json()["speakers"] == [
        {"name": name, "clips": 0, "seconds": 0.0, "in_store": False, "in_model": True}
        for name in ("David", "Steve")
    ]
    assert not (tmp_path / "speakers").exists()


@pytest.mark.parametrize("path", ["/", "/health", "/speakers", "/model", "/static/app.js"])
def test_every_read_under_another_name_is_421(make_client: ClientFactory, path: str) -> None:
    response = make_client().get(path, headers={"host": "rebound.example"})

    assert (response.status_code, response.json()) == (
        421, {"detail": BAD_HOST.format(host="rebound.example")}
    )  # fmt: skip


def test_reads_from_another_site_are_answered(make_client: ClientFactory) -> None:
    """A page of another site cannot read the answer (no CORS header is granted), so a read
    with its Origin is no threat, and a link to the page must work."""
    response = make_client().get("/speakers", headers={"origin": EVIL})

    assert response.status_code == 200
    assert "access-control-allow-origin" not in response.headers


def test_no_preflight_is_granted(make_client: ClientFactory) -> None:
    response = make_client().options(
        "/speakers/Steve/clips",
        headers={"origin": EVIL, "access-control-request-method": "POST",
                 "access-control-request-headers": "x-api-key"},
    )  # fmt: skip

    assert response.status_code == 405
    assert "access-control-allow-origin" not in response.headers


@pytest.mark.parametrize(
    ("settings", "host"),
    [({}, "localhost"), ({}, "LOCALHOST:8000"), ({}, "127.0.0.2:8000"), ({}, "[::1]:8000"),
     ({}, "localhost."), ({"host": "0.0.0.0"}, "192.168.1.4:8000"),
     ({"host": "0.0.0.0"}, "[fe80::1]:8000"), ({"host": "::"}, "10.0.0.7"),
     ({"host": "voice.lan"}, "voice.lan:8000"),
     ({"allowed_hosts": "voice.example.org"}, "voice.example.org"),
     ({"allowed_hosts": "*.example.org"}, "a.b.example.org:443")],
)  # fmt: skip
def test_names_the_server_answers_to(
    make_client: ClientFactory, settings: dict[str, str], host: str
) -> None:
    assert make_client(**settings).get("/health", headers={"host": host}).status_code == 200


@pytest.mark.parametrize(
    ("settings", "host"),
    [({"host": "0.0.0.0"}, "attacker.example"), ({"host": "voice.lan"}, "voice.lan.evil.example"),
     ({"allowed_hosts": "*.example.org"}, "example.org"),
     ({"allowed_hosts": "*.example.org"}, "evilexample.org"),
     ({"allowed_hosts": "voice.example.org"}, "voice.example.org.evil.example"),
     ({}, "192.168.1.4"), ({}, "localhost.evil.example"), ({}, "127.0.0.1.evil.example")],
)  # fmt: skip
def test_names_it_does_not_answer_to(
    make_client: ClientFactory, settings: dict[str, str], host: str
) -> None:
    assert make_client(**settings).get("/health", headers={"host": host}).status_code == 421


def test_a_keyed_write_from_another_origin_is_taken_but_not_under_another_name(
    make_client: ClientFactory, clip_files: Files
) -> None:
    """No page of another site can add the key without a preflight: a keyed request is no
    drive-by. Its Host is checked all the same."""
    client = make_client(api_key=KEY)
    keyed = {"x-api-key": KEY, "origin": EVIL, "sec-fetch-site": "cross-site"}

    taken = client.post("/speakers/Mallory/clips", files=clip_files, headers=keyed)
    rebound = client.delete("/speakers/Mallory", headers=keyed | {"host": "attacker.example"})
    unkeyed = client.delete("/speakers/Mallory", headers={"origin": EVIL})

    assert taken.status_code == 200
    assert rebound.status_code == 421
    assert unkeyed.status_code == 401  # the key is asked for before the site


def test_the_refusal_comes_before_the_body_is_read(make_client: ClientFactory) -> None:
    client = make_client(batch_max_bytes=1024)

    response = client.post("/speakers/Zoë/clips", content=bytes(4096),
                           headers={"content-type": "multipart/form-data; boundary=x",
                                    "origin": EVIL})  # fmt: skip

    assert response.status_code == 403  # not the body limit's 413: the body was never read


def test_the_names_answered_to_are_logged_at_start_up(
    make_client: ClientFactory, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level("INFO", logger="voiceid.service"):
        make_client(host="0.0.0.0", allowed_hosts="voice.example.org,*.lan")

    assert (
        "answering requests sent to localhost and loopback addresses, any IP address, "
        "voice.example.org, *.lan (more: VOICEID_ALLOWED_HOSTS)"
    ) in caplog.messages


# --- WebSockets: browsers put no same-origin limit on them ---------------------------------------


async def _echo(websocket: WebSocket) -> None:
    await websocket.accept()
    await websocket.send_text(await websocket.receive_text())
    await websocket.close()


@pytest.fixture
def socket_client() -> TestClient:
    app = Starlette(routes=[WebSocketRoute("/listen", _echo)])
    guarded = AuthMiddleware(app, Settings(model_dir=MODEL_DIR))
    return TestClient(guarded, base_url=LOOPBACK_URL)


@pytest.mark.parametrize(
    "headers",
    [{}, {"origin": OWN}, {"origin": "http://localhost:8000", "host": "localhost:8000"}],
    ids=["no Origin", "own page", "own page on localhost"],
)
def test_a_websocket_from_the_own_page_or_no_page_is_taken(
    socket_client: TestClient, headers: dict[str, str]
) -> None:
    with socket_client.websocket_connect(SOCKET_URL, headers=headers) as socket:
        socket.send_text("hello")
        assert socket.receive_text() == "hello"


@pytest.mark.parametrize(
    ("headers", "status", "detail"),
    [({"origin": EVIL}, 403, "WebSockets are taken only from this server's own page, and it "
      f"came from a page of {EVIL!r} (its Origin), not from {OWN!r}"),
     ({"host": "attacker.example", "origin": "http://attacker.example"}, 421,
      BAD_HOST.format(host="attacker.example"))],
    ids=["cross-site", "rebinding"],
)  # fmt: skip
def test_a_websocket_from_another_site_or_name_is_refused(
    socket_client: TestClient, headers: dict[str, str], status: int, detail: str
) -> None:
    with (
        pytest.raises(WebSocketDenialResponse) as refused,
        socket_client.websocket_connect(SOCKET_URL, headers=headers),
    ):
        pass

    assert refused.value.status_code == status
    assert refused.value.json() == {"detail": detail}


def test_a_websocket_is_closed_where_the_server_cannot_answer_it() -> None:
    """Without the ASGI extension for a denial answer, the handshake is closed (1008) with as
    much of the reason as a close frame holds."""
    guarded = AuthMiddleware(Starlette(), Settings(model_dir=MODEL_DIR))
    scope = {"type": "websocket", "path": "/listen", "scheme": "ws", "extensions": {},
             "headers": [(b"host", b"127.0.0.1"), (b"origin", EVIL.encode())]}  # fmt: skip
    sent: list[Message] = []

    async def receive() -> Message:
        return {"type": "websocket.connect"}

    async def send(message: Message) -> None:
        sent.append(message)

    asyncio.run(guarded(scope, receive, send))

    assert [(m["type"], m["code"]) for m in sent] == [("websocket.close", 1008)]
    reason = sent[0]["reason"]
    assert reason.startswith("WebSockets are taken only from this server's own page")
    assert len(reason.encode()) <= 123


def test_websockets_to_no_route_are_closed_as_before(socket_client: TestClient) -> None:
    with (
        pytest.raises(WebSocketDisconnect) as closed,
        socket_client.websocket_connect("ws://127.0.0.1/elsewhere"),
    ):
        pass

    assert not isinstance(closed.value, WebSocketDenialResponse)
