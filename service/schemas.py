"""Request and response bodies of the HTTP API, and how the responses about a model are built."""

from __future__ import annotations

from typing import Literal, get_args

from pydantic import BaseModel, ConfigDict, Field
from starlette.responses import Response

from pipeline.bundle import Bundle
from pipeline.features import band_centres
from pipeline.metadata import BundleMetadata
from pipeline.openset import UNSURE_ODDS, Reason
from pipeline.quality.issues import Issue, Measure
from pipeline.quality.measures import Quality
from pipeline.speakers import SpeakerSummary, StoredClip
from pipeline.takes import TakesCheck

__all__ = [
    "PLOT_NAMES",
    "AcceptedClip",
    "BatchItem",
    "BatchResponse",
    "ClipEntry",
    "ClipRemoved",
    "ClipsResponse",
    "ErrorResponse",
    "Explanation",
    "ListenHop",
    "ModelInfo",
    "ModelRef",
    "PlotName",
    "PredictResponse",
    "QualityIssue",
    "QualityReport",
    "RefusedClip",
    "ReloadRequest",
    "SpeakerDetail",
    "SpeakerEntry",
    "SpeakerRemoved",
    "SpeakersResponse",
    "Status",
    "TimelineResponse",
    "TimelineSegment",
    "json_bytes",
    "json_response",
]


def json_bytes(body: BaseModel) -> bytes:
    """``body`` as JSON without its None fields (what ``response_model_exclude_none`` sends),
    encoded once, without the validation FastAPI would run on it again."""
    return body.__pydantic_serializer__.to_json(body, exclude_none=True)


def json_response(body: BaseModel) -> Response:
    """:func:`json_bytes` of ``body``, as a response."""
    return Response(json_bytes(body), media_type="application/json")


class ErrorResponse(BaseModel):
    detail: str = Field(
        description="what was wrong, and with which value",
        examples=["clip is silent: peak level -72.4 dBFS is below -60 dBFS"],
    )


PlotName = Literal["training_curves", "confusion_matrix"]
PLOT_NAMES: tuple[PlotName, ...] = get_args(PlotName)  # the bundle's pictures, as <name>.png


class ModelRef(BaseModel):
    name: str = Field(examples=["default"])
    version: str = Field(description="first 12 hex digits of network.npz's sha256",
                         examples=["3f2a9c0d1b7e"])  # fmt: skip

    @classmethod
    def of(cls, bundle: Bundle) -> ModelRef:
        return cls.model_validate(cls.fields(bundle))

    @staticmethod
    def fields(bundle: Bundle) -> dict[str, str]:
        """The fields of ``bundle``'s reference, to validate within a larger answer."""
        return {"name": bundle.name, "version": bundle.version}


class Explanation(BaseModel):
    """What the network saw and did, for drawing it."""

    histogram: list[float] = Field(description="the clip's 60-bin histogram, dB")
    inputs: list[float] = Field(description="the standardised network inputs")
    hidden: list[float] = Field(description="hidden sigmoid activations, 0-1")
    band_centres_hz: list[float] = Field(description="centre frequency of each band, Hz")
    distance: float = Field(
        description="from the standardised inputs to the nearest training clip of the top speaker"
    )
    distance_threshold: float = Field(
        description="farther than this answers 'unknown' (a clean clip of a voice taught with "
        "few takes may still be named by its spectral envelope: see docs/teaching.md)"
    )


class QualityIssue(BaseModel):
    """One measure of the recording past its limit, and what would help."""

    measure: Measure = Field(examples=["clipped_fraction"])
    value: float = Field(examples=[0.034])
    limit: float = Field(description="where the recordings the model knows end",
                         examples=[0.01])  # fmt: skip
    problem: str = Field(examples=["the recording is clipped (3.4 % of samples at the peak)"])
    advice: str = Field(examples=["lower the microphone gain or move back from the microphone"])

    @classmethod
    def of(cls, issue: Issue) -> QualityIssue:
        return cls.model_validate(issue.to_dict())


class QualityReport(BaseModel):
    """The recording, measured from its signal (``pipeline.quality.measures``)."""

    speech_s: float = Field(description="seconds of speech once silence is trimmed")
    level_dbfs: float = Field(description="RMS level of the speech, dB relative to full scale")
    clipped_fraction: float = Field(description="share of samples flat at the peak, 0-1")
    snr_db: float = Field(description="speech above the steady background, dB")
    bandwidth_hz: float = Field(description="highest frequency that carries speech, Hz")
    available_hz: float = Field(description="the band the recording's own rate allows, Hz")
    low_band_db: float = Field(description="speech below 250 Hz against 250-1000 Hz, dB")
    background_low_band_db: float = Field(description="the background below 250 Hz against "
                                          "250-1000 Hz, dB")  # fmt: skip
    fall_db: float = Field(description="the steepest fall of the speech's energy within 60 ms, "
                           "dB (slow in an echoing room); 0 when none is measured")  # fmt: skip
    companded_levels: int = Field(description="how many levels the recording's own samples "
                                  "take when they are few and spaced as a telephone line's "
                                  "mu-law or A-law code spaces them; 0 otherwise")  # fmt: skip
    issues: list[QualityIssue] = Field(description="the measures past their limits, most "
                                       "telling first; empty for a clean recording")  # fmt: skip

    @classmethod
    def of(cls, quality: Quality, issues: tuple[Issue, ...]) -> QualityReport:
        return cls.model_validate(cls.fields(quality, issues))

    @staticmethod
    def fields(quality: Quality, issues: tuple[Issue, ...]) -> dict[str, object]:
        """The report's fields as plain values, to validate within a larger answer."""
        # vars(), not Quality.to_dict(): dataclasses.asdict deep-copies each field, which costs
        # more than the rest of the answer's building (python -m bench.serve).
        return vars(quality) | {"issues": [i.to_dict() for i in issues]}


class PredictResponse(BaseModel):
    speaker: str = Field(description='the speaker, or "unknown" (see unknown_reason)',
                         examples=["Steve"])  # fmt: skip
    confidence: float = Field(description="the score of the voice answered: the top score, or "
                              "the runner-up's where the clip lies far from the top voice's "
                              "recordings and near the runner-up's", examples=[0.97])  # fmt: skip
    scores: dict[str, float] = Field(examples=[{"David": 0.03, "Steve": 0.97}])
    unknown: bool = Field(description="true when the clip is nobody the model knows")
    unknown_reason: Literal["far", "unsure", "poor_recording"] | None = Field(
        None,
        description="far: too far from every known voice; unsure: between two voices (the top "
        "score is below the threshold, or under unsure_odds times the runner-up's); "
        "poor_recording: refused, and the recording has an "
        "issue (see unknown_cause); absent when a speaker is named",
    )
    unknown_cause: QualityIssue | None = Field(
        None, description="for poor_recording: the recording's most telling issue"
    )
    advice: str | None = Field(None, description="what would help, when the clip is unknown")
    threshold: float = Field(description="the top-score threshold in force ('unsure' below it)")
    model: ModelRef
    duration_s: float = Field(description="clip length in seconds", examples=[0.82])
    timing_ms: float = Field(description="server time spent on this clip", examples=[1.4])
    quality: QualityReport | None = Field(None, description="the recording, measured")
    explain: Explanation | None = None


class ListenHop(BaseModel):
    """One answer of a ``/listen`` stream, about the middle hop of its latest window."""

    t: float = Field(description="stream seconds of the middle of the hop this answer is about")
    speech: bool = Field(description="false: the hop holds no speech, and nothing more is said")
    speaker: str | None = Field(None, description='the speaker, or "unknown"')
    confidence: float | None = Field(None, description="the top score")
    unknown: bool | None = None
    unknown_reason: Reason | None = None
    histogram: list[float] | None = Field(None, description="the window's histogram (explain)")


class TimelineSegment(BaseModel):
    start: float = Field(description="seconds", examples=[1.25])
    end: float = Field(description="seconds", examples=[4.5])
    speaker: str = Field(description='the speaker, or "unknown"', examples=["Steve"])
    confidence: float = Field(description="the mean top score of the turn's hops")
    unknown: bool
    unknown_reason: Reason | None = None


class TimelineResponse(BaseModel):
    segments: list[TimelineSegment] = Field(description="turns in time order; silence is none")
    totals: dict[str, float] = Field(
        description="seconds of speech per speaker (and unknown)", examples=[{"Steve": 12.5}]
    )
    duration_s: float = Field(description="recording length in seconds")
    window_s: float
    hop_s: float
    model: ModelRef
    timing_ms: float = Field(description="server time spent on this recording")


class BatchItem(BaseModel):
    file: str = Field(description="the part's file name")
    ok: bool
    status: int = Field(description="the HTTP status this file alone would have had")
    result: PredictResponse | None = None
    detail: str | None = Field(None, description="what was wrong, when ok is false")


class BatchResponse(BaseModel):
    results: list[BatchItem]
    model: ModelRef


class ReloadRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    model_dir: str | None = Field(
        None, description="bundle folder to load; the one being served when omitted",
        examples=["models/default"],
    )  # fmt: skip


class Status(BaseModel):
    status: str = Field(examples=["ok"])
    model: ModelRef | None = None


class ModelInfo(BundleMetadata):
    """The bundle's ``metadata.json``, its folder's name, its weights and pictures."""

    version: str = Field(description="first 12 hex digits of network.npz's sha256")
    path: str = Field(description="the bundle folder's name (never the server's absolute path)")
    band_centres_hz: list[float]
    weights: dict[str, list[list[float]] | list[float]] = Field(
        description="hidden_kernel (60xH), hidden_bias (H), output_kernel (HxN), output_bias (N)"
    )
    plots: dict[str, str] = Field(description="URLs of the bundle's PNG pictures")
    unsure_odds: float = Field(
        description="a top score under this many times the runner-up's is 'unsure', whatever "
        "the threshold"
    )

    @classmethod
    def of(cls, bundle: Bundle) -> ModelInfo:
        net = bundle.network
        return cls.model_validate(
            dict(bundle.metadata)
            | {
                "version": bundle.version,
                "path": bundle.path.name,
                "band_centres_hz": band_centres(bundle.feature_config).tolist(),
                "unsure_odds": UNSURE_ODDS,
                "weights": {
                    "hidden_kernel": net.hidden_kernel.tolist(),
                    "hidden_bias": net.hidden_bias.tolist(),
                    "output_kernel": net.output_kernel.tolist(),
                    "output_bias": net.output_bias.tolist(),
                },
                # The version in the URL: a browser must not show the last model's cached picture.
                "plots": {
                    name: f"/model/plots/{name}.png?v={bundle.version}" for name in PLOT_NAMES
                },
            }
        )


class ModelVersion(BaseModel):
    """One model version a server can serve (``GET /models``)."""

    version: str = Field(description="first 12 hex digits of its network.npz's sha256")
    name: str
    created: str = Field(description="when it was trained, ISO 8601 in UTC")
    labels: list[str]
    metrics: dict[str, float | int]
    source: Literal["configured", "trained"] = Field(
        description="the bundle the server was started with, or one its training jobs made"
    )
    active: bool = Field(description="the version being served")
    problem: str | None = Field(
        None,
        description="why its bundle does not load (damaged or changed on disk since it was "
        "made): activating it is refused with these words; null when it loads",
    )


class ModelVersions(BaseModel):
    versions: list[ModelVersion] = Field(description="oldest first; the configured one first")


class JobStarted(BaseModel):
    job: str = Field(description="follow it at GET /train/{job}", examples=["3f2a9c1b7d4e"])


class JobStatus(BaseModel):
    """A training job (``GET /train/{id}``)."""

    job: str
    state: Literal["queued", "running", "done", "failed"]
    progress: float = Field(ge=0, le=1)
    detail: str = Field(description="what it is doing, or why it failed")
    created: str
    finished: str | None = None
    model: ModelVersion | None = Field(None, description="the version it made, once done")


# The speaker store


class SpeakerEntry(BaseModel):
    name: str = Field(examples=["Alice"])
    clips: int = Field(description="clips in the store (0 for a speaker of the model only)")
    seconds: float = Field(description="their total length, seconds")
    in_store: bool = Field(description="the store has clips of this speaker")
    in_model: bool = Field(description="the current model knows this speaker")


class SpeakersResponse(BaseModel):
    speakers: list[SpeakerEntry] = Field(description="sorted by name")

    @classmethod
    def of(cls, stored: list[SpeakerSummary], labels: tuple[str, ...]) -> SpeakersResponse:
        """The store's speakers and the model's ``labels``, one entry per name."""
        by_name = {s.name: s for s in stored}
        entries = [
            SpeakerEntry(
                name=name,
                clips=by_name[name].clips if name in by_name else 0,
                seconds=by_name[name].seconds if name in by_name else 0.0,
                in_store=name in by_name,
                in_model=name in labels,
            )
            for name in sorted(by_name.keys() | set(labels))
        ]
        return cls(speakers=entries)


class ClipEntry(BaseModel):
    id: str = Field(description="first 16 hex digits of the clip's sha256",
                    examples=["9f86d081884c7d65"])  # fmt: skip
    seconds: float
    bytes: int

    @classmethod
    def of(cls, clip: StoredClip) -> ClipEntry:
        return cls(id=clip.id, seconds=clip.seconds, bytes=clip.bytes)


class TakesReport(BaseModel):
    """How a voice's takes in the store hang together (``pipeline.takes``): advice, never a
    refusal. Either flag says that a few more takes, recorded later, would teach it better."""

    takes: int = Field(description="the store's takes of the voice that were judged")
    spread: float | None = Field(description="median distance from a take to its nearest other "
                                 "take, in the model's standardised feature space; absent or "
                                 "null with fewer than 3 takes")  # fmt: skip
    spread_limit: float = Field(description="the spread beyond which the takes are inconsistent: "
                                "a share of how far other people's voices lie")  # fmt: skip
    minutes: float = Field(description="from the first take stored to the last")
    inconsistent: bool = Field(description="the takes differ from one another about as much as "
                               "different voices do")  # fmt: skip
    one_sitting: bool = Field(description="every take was stored within a few minutes, at the "
                              "same level, background and bandwidth")  # fmt: skip

    @classmethod
    def of(cls, check: TakesCheck) -> TakesReport:
        spread = None if check.spread is None else round(check.spread, 4)
        return cls(takes=check.takes, spread=spread, spread_limit=round(check.spread_limit, 4),
                   minutes=round(check.minutes, 2), inconsistent=check.inconsistent,
                   one_sitting=check.one_sitting)  # fmt: skip


class SpeakerDetail(BaseModel):
    name: str
    in_model: bool
    clips: list[ClipEntry] = Field(description="the store's clips of this speaker, by id")
    takes: TakesReport | None = Field(
        None, description="how the store's takes hang together; null when it holds none"
    )


class AcceptedClip(BaseModel):
    id: str = Field(description="the stored clip's id")
    file: str = Field(description="the part's file name")
    seconds: float = Field(description="clip length in seconds")
    duplicate: bool = Field(description="the store held this clip already")
    histogram: list[float] = Field(description="the clip's 60-bin histogram under the current "
                                   "model's feature config, dB")  # fmt: skip
    quality: QualityReport = Field(description="the take's recording, measured")


class RefusedClip(BaseModel):
    file: str = Field(description="the part's file name")
    status: int = Field(description="the HTTP status /predict would give this clip")
    detail: str = Field(description="what was wrong, and with which value")
    quality: QualityReport | None = Field(
        None, description="the take's recording, measured, when it could be decoded"
    )


class ClipsResponse(BaseModel):
    speaker: str
    accepted: list[AcceptedClip]
    refused: list[RefusedClip]
    takes: TakesReport | None = Field(
        None,
        description="how all the store's takes of the speaker hang together, once these "
        "are stored; absent when none was accepted or the server was too busy to judge them",
    )


class SpeakerRemoved(BaseModel):
    removed: str = Field(description="the speaker's name")
    clips: int = Field(description="the clips removed with it")


class ClipRemoved(BaseModel):
    removed: str = Field(description="the clip's id")
