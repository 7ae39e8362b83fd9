"""/predict's fast path, the app's outermost layer: which requests it answers, and that its
answers, refusals and errors are the app's."""

from __future__ import annotations

import json
from functools import partial
from typing import Any

import pytest
from fastapi.testclient import TestClient
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service.fastpath import PredictFastPath
from tests.helpers import LOOPBACK_URL, ClientFactory, LoopbackClient
from tests.signals import SR, encode, tone

WAV = {"content-type": "audio/wav"}
KEY = "k" * 32


class Passed:
    """Stands between the fast path and FastAPI, counting the requests passed on."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.paths: list[str] = []

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            self.paths.append(scope["path"])
        await self.app(scope, receive, send)


def spy(client: TestClient) -> Passed:
    """Count what the fast path of ``client``'s app passes on to FastAPI."""
    client.get("/health")  # builds the middleware stack
    layer: Any = client.app
    while not isinstance(layer, PredictFastPath):
        layer = getattr(layer, "middleware_stack", None) or layer.app
    layer.app = passed = Passed(layer.app)
    return passed


def test_plain_predict_requests_are_answered_below_fastapi(
    client: TestClient, steve_wav: bytes
) -> None:
    passed = spy(client)

    raw = client.post("/predict", content=steve_wav, headers=WAV)
    upload = client.post("/predict", files={"file": ("clip.wav", steve_wav, "audio/wav")})

    assert (raw.status_code, upload.status_code) == (200, 200)
    assert raw.json()["speaker"] == upload.json()["speaker"] == "Steve"
    assert passed.paths == []


@pytest.mark.parametrize(
    ("path", "method", "headers"),
    [
        ("/predict?explain=true", "POST", WAV),
        ("/predict", "POST", {"content-type": "text/plain"}),
        ("/predict", "POST", {}),
        ("/predict", "GET", WAV),
        ("/predict/", "POST", WAV),
        ("/predict/batch", "POST", WAV),
    ],
)
def test_other_requests_go_on_to_fastapi(
    client: TestClient, steve_wav: bytes, path: str, method: str, headers: dict[str, str]
) -> None:
    passed = spy(client)

    client.request(method, path, content=steve_wav, headers=headers)

    assert passed.paths == [path.split("?")[0]]


def _silent() -> bytes:
    return encode(tone(amplitude=0.0), SR)


MULTIPART_X = {"content-type": "multipart/form-data; boundary=x"}
BODIES: dict[str, dict[str, Any]] = {
    "raw clip": {"content": "steve", "headers": WAV},
    "multipart clip": {"files": {"file": ("a.wav", "steve", "audio/wav")}},
    "empty raw body": {"content": b"", "headers": WAV},
    "not audio": {"content": b"RIFF nonsense", "headers": WAV},
    "octet stream": {"content": b"\x00" * 64,
                     "headers": {"content-type": "application/octet-stream"}},
    "silent clip": {"content": "silent", "headers": WAV},
    "no file field": {"files": {"other": ("a.wav", "steve", "audio/wav")}},
    "no boundary": {"content": b"--x\r\n", "headers": {"content-type": "multipart/form-data"}},
    "broken multipart": {"content": b"--x\r\nnope", "headers": MULTIPART_X},
}  # fmt: skip


def _request(name: str, steve_wav: bytes) -> dict[str, Any]:
    clips = {"steve": steve_wav, "silent": _silent()}
    kwargs = dict(BODIES[name])
    if isinstance(kwargs.get("content"), str):
        kwargs["content"] = clips[kwargs["content"]]
    if "files" in kwargs:
        field, (filename, clip, media) = next(iter(kwargs["files"].items()))
        kwargs["files"] = {field: (filename, clips[clip], media)}
    return kwargs


@pytest.mark.parametrize("name", list(BODIES))
def test_answers_are_the_routes(client: TestClient, steve_wav: bytes, name: str) -> None:
    kwargs = _request(name, steve_wav)

    fast = client.post("/predict", **kwargs)
    routed = client.post("/predict", params={"explain": "false"}, **kwargs)  # FastAPI's

    assert fast.status_code == routed.status_code
    assert fast.headers["content-type"] == routed.headers["content-type"]
    fast_body, routed_body = fast.json(), routed.json()
    if fast.status_code == 200:
        assert fast_body.pop("timing_ms") > 0
        routed_body.pop("timing_ms")
    assert fast_body == routed_body


def test_the_checks_before_it_still_hold(make_client: ClientFactory, steve_wav: bytes) -> None:
    client = make_client(api_key=KEY, max_upload_bytes=2048)
    passed = spy(client)

    no_key = client.post("/predict", content=steve_wav, headers=WAV)
    wrong_host = client.post("/predict", content=steve_wav, headers=WAV | {"host": "evil.test"})
    too_big = client.post("/predict", content=steve_wav, headers=WAV | {"x-api-key": KEY})
    chunks = (steve_wav[i : i + 1024] for i in range(0, len(steve_wav), 1024))  # no length
    streamed = client.post("/predict", content=chunks, headers=WAV | {"x-api-key": KEY})

    assert no_key.status_code == 401
    assert no_key.headers["www-authenticate"] == "ApiKey"
    assert wrong_host.status_code == 421
    assert too_big.status_code == 413
    assert too_big.json() == {
        "detail": f"upload of {len(steve_wav)} bytes is over the limit of 2048 bytes"
    }
    assert streamed.status_code == 413
    stopped = f"stopped reading at {len(steve_wav)} bytes"  # the test client sends it whole
    assert streamed.json() == {"detail": f"upload is over the limit of 2048 bytes ({stopped})"}
    assert passed.paths == []


REFUSALS: dict[str, dict[str, Any]] = {
    "no key": {"headers": WAV},
    "wrong key": {"headers": WAV | {"x-api-key": "w" * 32}},
    "wrong host": {"headers": WAV | {"host": "evil.test", "x-api-key": KEY}},
    "declared too large": {"headers": WAV | {"x-api-key": KEY}, "size": 4096},
    "compressed": {"headers": WAV | {"x-api-key": KEY, "content-encoding": "gzip"}},
    # Found too large as the route reads it, so counted under the route's name.
    "streamed too large": {"headers": WAV | {"x-api-key": KEY}, "size": 4096, "chunked": True,
                           "route": "/predict"},
}  # fmt: skip


@pytest.mark.parametrize("name", list(REFUSALS))
def test_its_refusals_are_the_apps(make_client: ClientFactory, name: str) -> None:
    client = make_client(api_key=KEY, max_upload_bytes=2048)
    case = REFUSALS[name]
    body = b"\0" * case.get("size", 16)

    def send(params: dict[str, str]) -> Any:
        content = iter([body]) if case.get("chunked") else body  # an iterator: no length
        return client.post("/predict", content=content, headers=case["headers"], params=params)

    fast = send({})
    routed = send({"explain": "false"})  # FastAPI's

    assert fast.status_code == routed.status_code >= 400
    assert fast.json() == routed.json()
    assert fast.headers.get("www-authenticate") == routed.headers.get("www-authenticate")
    route, status = case.get("route", "unmatched"), fast.status_code
    page = client.get("/metrics", headers={"x-api-key": KEY}).text
    assert f'voiceid_requests_total{{method="POST",route="{route}",status="{status}"}} 2.0' in page


def test_a_bug_on_it_is_the_apps_500(
    make_client: ClientFactory, steve_wav: bytes, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("a bug")

    monkeypatch.setattr("service.routes.predict.answer_clip", broken)
    app = make_client().app
    with LoopbackClient(app, base_url=LOOPBACK_URL, raise_server_exceptions=False) as client:
        fast = client.post("/predict", content=steve_wav, headers=WAV)
        routed = client.post("/predict?explain=false", content=steve_wav, headers=WAV)

    for answer in (fast, routed):
        assert answer.status_code == 500
        assert answer.json() == {"detail": "internal server error"}
        assert answer.headers["connection"] == "close"


def test_its_requests_are_counted_as_the_routes(client: TestClient, steve_wav: bytes) -> None:
    client.post("/predict", content=steve_wav, headers=WAV)
    client.post("/predict", content=steve_wav, headers=WAV)
    client.post("/predict", content=b"", headers=WAV)

    page = client.get("/metrics").text

    assert 'voiceid_requests_total{method="POST",route="/predict",status="200"} 2.0' in page
    assert 'voiceid_requests_total{method="POST",route="/predict",status="422"} 1.0' in page
    assert 'voiceid_request_latency_seconds_count{route="/predict"} 3.0' in page


def _post_in_messages(
    client: TestClient, messages: list[Message], headers: list[tuple[bytes, bytes]]
) -> tuple[list[Message], Passed]:
    """What the app sends for a POST /predict whose body arrives as ``messages``, and the spy on
    the requests that reached the routes."""
    sent: list[Message] = []

    async def receive() -> Message:
        return messages.pop(0)

    async def send(message: Message) -> None:
        sent.append(message)

    scope: Scope = {"type": "http", "method": "POST", "path": "/predict", "raw_path": b"/predict",
                    "query_string": b"", "headers": [(b"host", b"127.0.0.1"), *headers],
                    "scheme": "http", "server": ("127.0.0.1", 8000),
                    "client": ("127.0.0.1", 5000), "root_path": "",
                    "http_version": "1.1"}  # fmt: skip
    passed = spy(client)
    assert client.portal is not None
    client.portal.call(partial(client.app, scope, receive, send))
    return sent, passed


def test_a_client_gone_mid_upload_gets_499(client: TestClient) -> None:
    messages: list[Message] = [{"type": "http.request", "body": b"RIFF", "more_body": True},
                               {"type": "http.disconnect"}]  # fmt: skip

    sent, passed = _post_in_messages(client, messages, [(b"content-type", b"audio/wav")])

    assert sent[0]["status"] == 499
    assert passed.paths == []


def test_a_body_longer_than_it_declared_is_refused_as_it_is_read(
    make_client: ClientFactory,
) -> None:
    client = make_client(max_upload_bytes=2048)
    messages: list[Message] = [{"type": "http.request", "body": b"\0" * 1500, "more_body": True},
                               {"type": "http.request", "body": b"\0" * 1500},
                               {"type": "http.disconnect"}]  # fmt: skip
    headers = [(b"content-type", b"audio/wav"), (b"content-length", b"1000")]

    sent, passed = _post_in_messages(client, messages, headers)

    assert sent[0]["status"] == 413
    detail = "upload is over the limit of 2048 bytes (stopped reading at 3000 bytes)"
    assert json.loads(sent[1]["body"]) == {"detail": detail}
    assert messages == []  # the rest was read before the answer
    assert passed.paths == []
