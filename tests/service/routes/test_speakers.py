"""The speaker store's routes: listing, enrolling clips (checked as /predict checks them),
removing, and the limits."""

from __future__ import annotations

import errno
import io
import os
import unicodedata
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import soundfile as sf
from fastapi.testclient import TestClient

from pipeline.bundle import Bundle
from pipeline.predict import clip_histogram
from pipeline.speakers import clip_id
from tests.helpers import ClientFactory, read_only
from tests.signals import PNG_BYTES, SR, encode, tone

MODEL_ONLY = [
    {"name": "David", "clips": 0, "seconds": 0.0, "in_store": False, "in_model": True},
    {"name": "Steve", "clips": 0, "seconds": 0.0, "in_store": False, "in_model": True},
]
SILENT = encode(np.zeros(16_000, dtype=np.float32))
SILENT_DETAIL = "clip is silent: peak level -inf dBFS is below -80 dBFS"
JUNK_DETAIL = "cannot decode PNG image data: not a supported audio format"


def seconds(clip: bytes) -> float:
    info = sf.info(io.BytesIO(clip))
    return round(info.frames / info.samplerate, 4)


def upload(client: TestClient, name: str, *clips: tuple[str, bytes]) -> tuple[int, Any]:
    files = [("files", (file, data, "audio/wav")) for file, data in clips]
    response = client.post(f"/speakers/{name}/clips", files=files)
    return response.status_code, response.json()


@pytest.fixture
def stranger(demo_clips: dict[str, list[bytes]]) -> list[bytes]:
    """Three clips of a voice the shipped model does not know."""
    return demo_clips["Stranger"]


def test_an_empty_store_lists_the_model_s_speakers(client: TestClient) -> None:
    response = client.get("/speakers")

    assert response.status_code == 200
    assert response.json() == {"speakers": MODEL_ONLY}


def test_accepted_clips_carry_id_length_and_histogram(
    client: TestClient, stranger: list[bytes], default_bundle: Bundle
) -> None:
    status, answer = upload(client, "Zoë", ("a.wav", stranger[0]), ("b.wav", stranger[1]))

    assert status == 200
    assert answer["speaker"] == "Zoë"
    assert answer["refused"] == []
    assert [(a["id"], a["file"], a["seconds"], a["duplicate"]) for a in answer["accepted"]] == [
        (clip_id(stranger[0]), "a.wav", seconds(stranger[0]), False),
        (clip_id(stranger[1]), "b.wav", seconds(stranger[1]), False),
    ]
    row, _ = clip_histogram(stranger[0], default_bundle.feature_config)
    assert len(answer["accepted"][0]["histogram"]) == 60  # the histogram, not the band spread
    np.testing.assert_allclose(answer["accepted"][0]["histogram"], row[:60], rtol=1e-6)


def test_enrolled_clips_are_listed(client: TestClient, stranger: list[bytes]) -> None:
    upload(client, "Zoë", *[(f"{i}.wav", clip) for i, clip in enumerate(stranger)])

    listed = client.get("/speakers").json()
    detail = client.get("/speakers/Zoë").json()

    total = round(sum(seconds(c) for c in stranger), 4)
    assert listed == {"speakers": [*MODEL_ONLY, {"name": "Zoë", "clips": 3, "seconds": total,
                                                 "in_store": True, "in_model": False}]}  # fmt: skip
    assert detail == {
        "name": "Zoë",
        "in_model": False,
        "clips": [
            {"id": clip_id(c), "seconds": seconds(c), "bytes": len(c)}
            for c in sorted(stranger, key=clip_id)
        ],
        "takes": detail["takes"],  # judged: see the tests of takes below
    }
    assert detail["takes"]["takes"] == 3


def test_the_store_holds_the_uploaded_bytes_under_their_id(
    make_client: ClientFactory, tmp_path: Path, stranger: list[bytes]
) -> None:
    client = make_client(data_dir=tmp_path / "store")

    upload(client, "Zoë", ("a.wav", stranger[0]))

    stored = tmp_path / "store" / "Zoë" / f"{clip_id(stranger[0])}.wav"
    assert stored.read_bytes() == stranger[0]


def test_entries_no_client_could_name_are_not_listed(
    make_client: ClientFactory, tmp_path: Path, stranger: list[bytes]
) -> None:
    client = make_client(data_dir=tmp_path / "store")
    upload(client, "Dee", ("a.wav", stranger[0]))
    for raw in (b"Ab\xffc/a.wav", b"We~ird/a.wav", b"Dee/aaaa\xff.wav"):
        path = tmp_path / "store" / os.fsdecode(raw)
        path.parent.mkdir(exist_ok=True)
        path.write_bytes(stranger[1])

    speakers = client.get("/speakers")
    dee = client.get("/speakers/Dee")

    assert [s["name"] for s in speakers.json()["speakers"]] == ["David", "Dee", "Steve"]
    assert [c["id"] for c in dee.json()["clips"]] == [clip_id(stranger[0])]


STORE_GONE = (
    "the speaker store cannot be used: its folder was replaced by a file since the server "
    "started (the server's log names it); the server's operator must put the folder back"
)


def test_a_store_folder_replaced_by_a_file_is_503_on_its_routes_until_it_is_back(
    make_client: ClientFactory,
    tmp_path: Path,
    stranger: list[bytes],
    caplog: pytest.LogCaptureFixture,
) -> None:
    store = tmp_path / "store"
    client = make_client(data_dir=store)
    upload(client, "Dee", ("a.wav", stranger[0]))
    store.rename(tmp_path / "away")
    store.write_text("not a folder")
    clip = [("files", ("b.wav", stranger[1], "audio/wav"))]

    answers = [
        client.get("/speakers"),
        client.get("/speakers/Dee"),
        client.post("/speakers/Eve/clips", files=clip),
        client.delete("/speakers/Dee"),
        client.post("/train"),
        client.get("/models"),
    ]
    predicted = client.post("/predict", files={"file": ("c.wav", stranger[2], "audio/wav")})
    store.unlink()
    (tmp_path / "away").rename(store)

    assert [(a.status_code, a.json()) for a in answers] == [(503, {"detail": STORE_GONE})] * 6
    assert predicted.status_code == 200  # the model serves on
    assert [r.getMessage() for r in caplog.records if r.levelname == "ERROR"] == [
        f"the speaker store {store} cannot be used: {store} is not a folder"
    ]  # once, for six requests
    assert [s["name"] for s in client.get("/speakers").json()["speakers"]] == [
        "David", "Dee", "Steve"
    ]  # fmt: skip


def test_the_same_clip_again_is_a_duplicate(client: TestClient, stranger: list[bytes]) -> None:
    _, first = upload(client, "Zoë", ("a.wav", stranger[0]), ("again.wav", stranger[0]))
    _, second = upload(client, "Zoë", ("b.wav", stranger[0]))

    assert [a["duplicate"] for a in first["accepted"] + second["accepted"]] == [False, True, True]
    assert client.get("/speakers/Zoë").json()["clips"][0]["id"] == clip_id(stranger[0])
    assert len(client.get("/speakers/Zoë").json()["clips"]) == 1


def test_refused_clips_say_why_beside_the_accepted(
    make_client: ClientFactory, stranger: list[bytes]
) -> None:
    client = make_client(max_upload_bytes=len(stranger[0]) + 10)
    big = encode(tone(220, seconds=2.0))

    status, answer = upload(client, "Zoë", ("ok.wav", stranger[0]), ("junk.wav", PNG_BYTES),
                            ("silent.wav", SILENT), ("big.wav", big))  # fmt: skip

    assert status == 200
    assert [a["file"] for a in answer["accepted"]] == ["ok.wav"]
    assert answer["refused"] == [
        {"file": "junk.wav", "status": 415, "detail": JUNK_DETAIL},
        {"file": "silent.wav", "status": 422, "detail": SILENT_DETAIL},
        {"file": "big.wav", "status": 413, "detail": f"file of {len(big)} bytes is over the "
                                                     f"limit of {len(stranger[0]) + 10} bytes"},
    ]  # fmt: skip


def test_a_clip_too_short_to_resample_is_refused_alone_by_name(
    client: TestClient, stranger: list[bytes]
) -> None:
    tiny = encode(np.full(1, 0.5, np.float32), 48_000)

    status, answer = upload(client, "Zoë", ("tiny.wav", tiny), ("ok.wav", stranger[0]))

    assert status == 200
    assert [a["file"] for a in answer["accepted"]] == ["ok.wav"]
    assert answer["refused"] == [
        {"file": "tiny.wav", "status": 422,
         "detail": f"clip has no samples at {SR} Hz: its 1 at 48000 Hz last less than one"},
    ]  # fmt: skip
    assert len(client.get("/speakers/Zoë").json()["clips"]) == 1


def test_each_take_says_how_it_was_recorded_refused_or_not(
    client: TestClient, stranger: list[bytes]
) -> None:
    click = np.zeros(SR, np.float32)
    click[SR // 2] = 0.5

    status, answer = upload(client, "Zoë", ("ok.wav", stranger[0]), ("click.wav", encode(click)),
                            ("junk.wav", PNG_BYTES))  # fmt: skip

    assert status == 200
    assert answer["accepted"][0]["quality"]["issues"] == []
    click_answer, junk_answer = answer["refused"]
    assert click_answer["detail"].startswith("clip holds no speech")
    assert [i["measure"] for i in click_answer["quality"]["issues"]] == ["speech_s"]
    assert "quality" not in junk_answer  # it never decoded


@pytest.mark.filterwarnings("ignore:overflow encountered:RuntimeWarning")
@pytest.mark.filterwarnings("ignore:invalid value encountered:RuntimeWarning")
def test_a_take_whose_spectrum_overflows_is_refused_not_a_server_error(
    client: TestClient, stranger: list[bytes]
) -> None:
    huge = encode(tone(440, amplitude=1e20), subtype="FLOAT")  # its measures would be NaN

    status, answer = upload(client, "Zoë", ("huge.wav", huge), ("ok.wav", stranger[0]))

    assert status == 200
    assert answer["refused"] == [
        {"file": "huge.wav", "status": 422, "detail": "clip overflows the spectrum: its peak "
         "sample 1e+20 is far beyond full scale (1.0)"},
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("clips", "status"),
    [([PNG_BYTES, PNG_BYTES], 415), ([SILENT], 422), ([PNG_BYTES, SILENT], 422)],
    ids=["all undecodable", "all silent", "mixed"],
)
def test_nothing_accepted_answers_the_refusals_status(
    client: TestClient, clips: list[bytes], status: int
) -> None:
    got, answer = upload(client, "Zoë", *[(f"{i}.wav", c) for i, c in enumerate(clips)])

    assert got == status
    assert answer["accepted"] == []
    assert [r["status"] for r in answer["refused"]] == [415 if c == PNG_BYTES else 422
                                                        for c in clips]  # fmt: skip
    assert client.get("/speakers").json() == {"speakers": MODEL_ONLY}


def test_a_body_that_is_not_multipart_is_415(client: TestClient, stranger: list[bytes]) -> None:
    response = client.post(
        "/speakers/Zoë/clips", content=stranger[0], headers={"content-type": "audio/wav"}
    )

    assert response.status_code == 415
    assert response.json() == {"detail": "unsupported content type 'audio/wav': send "
                               "multipart/form-data with one 'files' field per clip"}  # fmt: skip


def test_the_upload_has_the_batch_body_limit(
    make_client: ClientFactory, stranger: list[bytes]
) -> None:
    client = make_client(batch_max_bytes=2 * len(stranger[0]))
    files = [("files", (f"{i}.wav", c, "audio/wav")) for i, c in enumerate(stranger)]

    response = client.post("/speakers/Zoë/clips", files=files)

    assert response.status_code == 413
    assert response.json()["detail"].endswith(f"over the limit of {2 * len(stranger[0])} bytes")


def test_more_files_than_a_batch_takes_is_413(
    make_client: ClientFactory, stranger: list[bytes]
) -> None:
    client = make_client(batch_max_files=2)

    status, answer = upload(client, "Zoë", *[(f"{i}.wav", c) for i, c in enumerate(stranger)])

    assert (status, answer) == (413, {"detail": "batch of 3 files is over the limit of 2"})


def test_a_thousand_and_one_parts_are_413_naming_the_setting(client: TestClient) -> None:
    files = [("files", (f"{i}.wav", b"x", "audio/wav")) for i in range(1001)]

    response = client.post("/speakers/Zoë/clips", files=files)

    assert (response.status_code, response.json()) == (413, {
        "detail": "multipart body has more than 1000 parts: a batch takes at most 32 files "
                  "(VOICEID_BATCH_MAX_FILES)"})  # fmt: skip
    assert client.get("/speakers").json() == {"speakers": MODEL_ONLY}


# --- names --------------------------------------------------------------------------------------

BOLD_A = "\U0001d400"  # MATHEMATICAL BOLD CAPITAL A
KOREAN = "\ud55c\uad6d"


@pytest.mark.parametrize(
    ("first", "second"),
    [("Alice", "alice"), ("Alice", "\u0410lice"), ("Alice", "\uff21lice"),
     ("Alice", f"{BOLD_A}lice"), ("fiona", "\ufb01ona")],
    ids=["case", "Cyrillic A", "fullwidth A", "bold A", "ligature fi"],
)  # fmt: skip
def test_a_name_that_reads_as_a_stored_one_is_409_naming_it(
    client: TestClient, stranger: list[bytes], first: str, second: str
) -> None:
    upload(client, first, ("a.wav", stranger[0]))

    status, answer = upload(client, second, ("b.wav", stranger[1]))

    assert (status, answer) == (409, {
        "detail": f"speaker name {second!r} reads the same as {first!r}, a speaker in the "
                  f"store: use {first!r} to add to that speaker, or a name that reads "
                  "differently"})  # fmt: skip
    assert [s["name"] for s in client.get("/speakers").json()["speakers"] if s["in_store"]] == [
        first
    ]


@pytest.mark.parametrize(
    ("first", "second"),
    [("Kate", "\u212aate"), ("\u00c5sa", "\u212bsa"),
     (KOREAN, unicodedata.normalize("NFD", KOREAN)), ("Ren\u00e9", "Rene\u0301")],
    ids=["Kelvin sign", "Angstrom sign", "Korean NFD", "Rene NFD"],
)  # fmt: skip
def test_the_same_name_in_another_normal_form_is_the_same_speaker(
    client: TestClient, stranger: list[bytes], first: str, second: str
) -> None:
    upload(client, first, ("a.wav", stranger[0]))

    status, answer = upload(client, second, ("b.wav", stranger[1]))

    assert (status, answer["speaker"]) == (200, first)
    assert client.get(f"/speakers/{second}").json()["name"] == first
    assert [(s["name"], s["clips"]) for s in client.get("/speakers").json()["speakers"]
            if s["in_store"]] == [(first, 2)]  # fmt: skip


def test_a_decomposed_name_is_stored_composed_and_found_either_way(
    make_client: ClientFactory, tmp_path: Path, stranger: list[bytes]
) -> None:
    client = make_client(data_dir=tmp_path / "store")

    status, answer = upload(client, "Rene\u0301", ("a.wav", stranger[0]))
    folders = sorted(os.listdir(tmp_path / "store"))
    detail = client.get("/speakers/Rene\u0301")
    removed = client.delete("/speakers/Rene\u0301")

    assert (status, answer["speaker"]) == (200, "Ren\u00e9")
    assert folders == [".lock", "Ren\u00e9"]
    assert (detail.status_code, detail.json()["name"]) == (200, "Ren\u00e9")
    assert (removed.status_code, removed.json()) == (200, {"removed": "Ren\u00e9", "clips": 1})


def test_a_name_that_reads_as_a_model_speaker_is_409_naming_it(
    client: TestClient, stranger: list[bytes]
) -> None:
    status, answer = upload(client, "Dav\u0456d", ("a.wav", stranger[0]))  # Cyrillic i

    assert (status, answer) == (409, {
        "detail": "speaker name 'Dav\u0456d' reads the same as 'David', a speaker of the "
                  "model: use 'David' to add to that speaker, or a name that reads "
                  "differently"})  # fmt: skip
    assert client.get("/speakers").json() == {"speakers": MODEL_ONLY}


@pytest.mark.parametrize(
    "name", ["unknown", "Unknown", "unkn\u043ewn"], ids=["same", "case", "Cyrillic o"]
)
def test_a_name_that_reads_as_unknown_is_422_before_a_take_is_stored(
    client: TestClient, stranger: list[bytes], name: str
) -> None:
    status, answer = upload(client, name, ("a.wav", stranger[0]))

    assert (status, answer) == (422, {
        "detail": f"speaker name {name!r} reads as 'unknown', the answer for a voice the "
                  "model does not know: no model could be trained with it; choose another "
                  "name"})  # fmt: skip
    assert client.get("/speakers").json() == {"speakers": MODEL_ONLY}


def test_clips_for_a_model_speaker_need_add_to_existing(
    client: TestClient, stranger: list[bytes]
) -> None:
    refused = upload(client, "Steve", ("a.wav", stranger[0]))
    files = [("files", ("a.wav", stranger[0], "audio/wav"))]
    added = client.post("/speakers/Steve/clips", params={"add_to_existing": "true"}, files=files)

    assert refused == (409, {
        "detail": "'Steve' is a speaker the model knows: to add these clips to its voice, say "
                  "so with add_to_existing=true; for another person, choose another "
                  "name"})  # fmt: skip
    assert added.status_code == 200
    assert client.get("/speakers/Steve").json()["clips"][0]["id"] == clip_id(stranger[0])


def test_add_to_existing_is_documented_on_the_route(client: TestClient) -> None:
    route = client.get("/openapi.json").json()["paths"]["/speakers/{name}/clips"]["post"]

    [flag] = [p for p in route["parameters"] if p["name"] == "add_to_existing"]
    assert (flag["in"], flag["schema"]["default"]) == ("query", False)
    assert "refused (409)" in flag["description"]
    assert "add_to_existing=true" in route["description"]
    assert set(route["responses"]) >= {"409", "507"}


# --- one recording, one speaker -----------------------------------------------------------------


def clash(file: str, speaker: str) -> dict[str, Any]:
    return {"file": file, "status": 409, "detail": f"the store holds this clip as one of "
            f"{speaker!r}, and one recording cannot be two speakers: remove it from "
            f"{speaker!r} first if it was filed under the wrong name"}  # fmt: skip


def test_a_clip_stored_as_another_speaker_s_is_refused_beside_the_rest(
    client: TestClient, stranger: list[bytes]
) -> None:
    upload(client, "Zoë", ("a.wav", stranger[0]))

    status, answer = upload(client, "Yann", ("a.wav", stranger[0]), ("b.wav", stranger[1]))

    assert status == 200
    assert [a["file"] for a in answer["accepted"]] == ["b.wav"]
    assert answer["refused"] == [clash("a.wav", "Zoë")]
    assert [c["id"] for c in client.get("/speakers/Yann").json()["clips"]] == [clip_id(stranger[1])]


def test_clips_all_stored_as_another_speaker_s_are_409(
    client: TestClient, stranger: list[bytes]
) -> None:
    upload(client, "Zoë", ("a.wav", stranger[0]))

    status, answer = upload(client, "Yann", ("a.wav", stranger[0]))

    assert (status, answer) == (409, {"speaker": "Yann", "accepted": [],
                                      "refused": [clash("a.wav", "Zoë")]})  # fmt: skip
    assert client.get("/speakers/Yann").status_code == 404


def learnt(speaker: str, why: str) -> dict[str, Any]:
    detail = (
        f"this clip has the same bytes as '{speaker}/hello_003.wav', a clip of {speaker!r} the "
        f"model learnt from: {why}"
    )
    return {"file": "again.wav", "status": 409, "detail": detail}


def test_a_clip_the_model_learnt_from_is_refused_beside_the_rest(
    client: TestClient, stranger: list[bytes], demo_data: Path
) -> None:
    """The shipped model learnt from the demo voices' clips of seed 0 (``demo_data``'s): the
    next training would refuse such a take, so the store does so at once."""
    again = (demo_data / "Steve" / "hello_003.wav").read_bytes()

    status, answer = upload(client, "Zoë", ("again.wav", again), ("b.wav", stranger[1]))

    assert status == 200
    assert [a["file"] for a in answer["accepted"]] == ["b.wav"]
    [refused] = answer["refused"]
    assert {k: refused[k] for k in ("file", "status", "detail")} == learnt(
        "Steve", "one recording cannot teach two voices: record a take of your own"
    )
    assert refused["quality"]["speech_s"] > 0  # measured, as every take is
    assert [c["id"] for c in client.get("/speakers/Zoë").json()["clips"]] == [clip_id(stranger[1])]


def test_a_voice_s_own_learnt_clip_added_to_it_is_409(client: TestClient, demo_data: Path) -> None:
    again = (demo_data / "David" / "hello_003.wav").read_bytes()
    files = [("files", ("again.wav", again, "audio/wav"))]

    response = client.post("/speakers/David/clips?add_to_existing=true", files=files)

    assert response.status_code == 409
    assert [
        {k: r[k] for k in ("file", "status", "detail")} for r in response.json()["refused"]
    ] == [learnt("David", "it holds nothing new: leave it out")]
    assert client.get("/speakers/David").json()["clips"] == []


def test_a_model_whose_training_set_cannot_be_read_stores_the_clip(
    make_client: ClientFactory, bundle_copy: Path, demo_data: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:  # fmt: skip
    (bundle_copy / "train_features.npz").write_bytes(b"not an npz")
    client = make_client(model_dir=bundle_copy)
    again = (demo_data / "Steve" / "hello_003.wav").read_bytes()

    status, answer = upload(client, "Zoë", ("again.wav", again))

    assert (status, answer["refused"]) == (200, [])
    assert "cannot tell which clips the model learnt from" in caplog.text


# --- limits --------------------------------------------------------------------------------------


def test_the_clips_limit_is_409_and_stores_none(
    make_client: ClientFactory, stranger: list[bytes]
) -> None:
    client = make_client(max_clips_per_speaker=2)
    upload(client, "Zoë", ("a.wav", stranger[0]))

    status, answer = upload(client, "Zoë", ("b.wav", stranger[1]), ("c.wav", stranger[2]))

    assert (status, answer) == (409, {"detail": "cannot add 2 clips to 'Zoë': it has 1, and the "
                                      "limit is 2 clips per speaker "
                                      "(VOICEID_MAX_CLIPS_PER_SPEAKER)"})  # fmt: skip
    assert len(client.get("/speakers/Zoë").json()["clips"]) == 1


def test_the_speakers_limit_is_409(make_client: ClientFactory, stranger: list[bytes]) -> None:
    client = make_client(max_speakers=1)
    upload(client, "Zoë", ("a.wav", stranger[0]))

    status, answer = upload(client, "Yann", ("b.wav", stranger[1]))

    assert (status, answer) == (409, {"detail": "cannot add speaker 'Yann': the store holds 1 "
                                      "speakers, the limit (VOICEID_MAX_SPEAKERS)"})  # fmt: skip


def test_the_store_size_limit_is_413(make_client: ClientFactory, stranger: list[bytes]) -> None:
    limit = len(stranger[0]) + len(stranger[1]) - 1
    client = make_client(max_store_bytes=limit)
    upload(client, "Zoë", ("a.wav", stranger[0]))

    status, answer = upload(client, "Yann", ("b.wav", stranger[1]))

    assert (status, answer) == (413, {"detail": f"cannot add {len(stranger[1])} bytes of clips: "
                                      f"the store holds {len(stranger[0])} bytes, and the limit "
                                      f"is {limit} bytes (VOICEID_MAX_STORE_BYTES)"})  # fmt: skip


def test_a_full_disk_is_507_and_stores_none(
    client: TestClient, stranger: list[bytes], monkeypatch: pytest.MonkeyPatch
) -> None:
    upload(client, "Zoë", ("a.wav", stranger[0]))
    writes = []
    real_fsync = os.fsync

    def fsync(fd: int) -> None:  # the disk fills up after the first of the new clips
        writes.append(fd)
        if len(writes) > 1:
            raise OSError(errno.ENOSPC, "No space left on device")
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    status, answer = upload(client, "Zoë", *[(f"{i}.wav", c) for i, c in enumerate(stranger[1:])])

    assert (status, answer) == (507, {
        "detail": "the disk of the speaker store is full: none of the 2 new clips was stored; "
                  "free space on it, or lower the store's size limit to what it holds "
                  "(VOICEID_MAX_STORE_BYTES)"})  # fmt: skip
    assert [c["id"] for c in client.get("/speakers/Zoë").json()["clips"]] == [clip_id(stranger[0])]


# --- how the takes hang together (pipeline.takes) -------------------------------------------------


def test_takes_sent_together_in_the_same_conditions_are_one_sitting(
    client: TestClient, stranger: list[bytes]
) -> None:
    _, first = upload(client, "Zoë", ("a.wav", stranger[0]))
    _, answer = upload(client, "Zoë", *[(f"{i}.wav", clip) for i, clip in enumerate(stranger)])

    assert first["takes"] == {"takes": 1, "spread_limit": first["takes"]["spread_limit"],
                              "minutes": 0.0, "inconsistent": False,
                              "one_sitting": False}  # one take: nothing to judge  # fmt: skip
    takes = answer["takes"]
    assert (takes["takes"], takes["one_sitting"], takes["inconsistent"]) == (3, True, False)
    assert takes["minutes"] < 1 and 0 < takes["spread"] < takes["spread_limit"]
    assert client.get("/speakers/Zoë").json()["takes"] == takes


def test_takes_stored_hours_apart_are_not_one_sitting(
    make_client: ClientFactory, tmp_path: Path, stranger: list[bytes]
) -> None:
    client = make_client(data_dir=tmp_path / "store")
    upload(client, "Zoë", *[(f"{i}.wav", clip) for i, clip in enumerate(stranger)])
    for hours, path in enumerate(sorted((tmp_path / "store" / "Zoë").iterdir())):
        os.utime(path, (1e9 + 3600 * hours, 1e9 + 3600 * hours))

    takes = client.get("/speakers/Zoë").json()["takes"]

    assert (takes["one_sitting"], takes["minutes"]) == (False, 120.0)


def test_takes_far_apart_are_inconsistent(client: TestClient) -> None:
    tones = [encode(tone(f, seconds=1.0)) for f in (150.0, 900.0, 3000.0)]

    _, answer = upload(client, "Zoë", *[(f"{i}.wav", t) for i, t in enumerate(tones)])

    takes = answer["takes"]
    assert (takes["inconsistent"], takes["one_sitting"]) == (True, False)  # other bandwidths
    assert takes["spread"] > takes["spread_limit"]


def test_no_take_accepted_judges_none(client: TestClient) -> None:
    _, answer = upload(client, "Zoë", ("silent.wav", SILENT))

    assert "takes" not in answer


# --- reading one speaker, removing ---------------------------------------------------------------


def test_a_model_speaker_has_no_clips_in_the_store(client: TestClient) -> None:
    response = client.get("/speakers/Steve")

    assert response.json() == {"name": "Steve", "in_model": True, "clips": [], "takes": None}


def test_an_unknown_speaker_is_404(client: TestClient) -> None:
    response = client.get("/speakers/Nobody")

    assert (response.status_code, response.json()) == (
        404, {"detail": "no speaker 'Nobody' in the store or the model"}
    )  # fmt: skip


def test_removing_a_speaker_removes_its_clips(client: TestClient, stranger: list[bytes]) -> None:
    upload(client, "Zoë", ("a.wav", stranger[0]), ("b.wav", stranger[1]))

    removed = client.delete("/speakers/Zoë")
    again = client.delete("/speakers/Zoë")

    assert (removed.status_code, removed.json()) == (200, {"removed": "Zoë", "clips": 2})
    assert (again.status_code, again.json()) == (404, {"detail": "the store has no speaker 'Zoë'"})
    assert client.get("/speakers").json() == {"speakers": MODEL_ONLY}


def test_a_speaker_of_the_model_alone_is_not_removed(client: TestClient) -> None:
    response = client.delete("/speakers/Steve")

    assert (response.status_code, response.json()) == (409, {
        "detail": "'Steve' is a speaker of the model, not of the store: train without it, or "
                  "activate a version that does not know it"})  # fmt: skip


def test_removing_a_clip(client: TestClient, stranger: list[bytes]) -> None:
    upload(client, "Zoë", ("a.wav", stranger[0]), ("b.wav", stranger[1]))
    gone = clip_id(stranger[0])

    removed = client.delete(f"/speakers/Zoë/clips/{gone}")
    again = client.delete(f"/speakers/Zoë/clips/{gone}")

    assert (removed.status_code, removed.json()) == (200, {"removed": gone})
    assert (again.status_code, again.json()) == (
        404, {"detail": f"speaker 'Zoë' has no clip '{gone}' in the store"}
    )  # fmt: skip
    assert [c["id"] for c in client.get("/speakers/Zoë").json()["clips"]] == [clip_id(stranger[1])]


def test_a_store_made_read_only_while_serving_is_503_for_changes_and_reads_on(
    client: TestClient, stranger: list[bytes], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    upload(client, "Zoë", ("a.wav", stranger[0]))
    read_only(monkeypatch, tmp_path / "speakers")
    refused = {"detail": "the speaker store cannot be written (Read-only file system): nothing "
               "in it was changed; its folder must be made writable again"}  # fmt: skip

    answers = [upload(client, "Zoë", ("b.wav", stranger[1])),
               upload(client, "Yann", ("c.wav", stranger[2]))] + [
        (r.status_code, r.json())
        for r in (client.delete(f"/speakers/Zoë/clips/{clip_id(stranger[0])}"),
                  client.delete("/speakers/Zoë"))]  # fmt: skip

    assert answers == [(503, refused)] * 4
    assert [c["id"] for c in client.get("/speakers/Zoë").json()["clips"]] == [clip_id(stranger[0])]
