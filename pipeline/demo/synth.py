"""A small, deterministic source-filter synthesiser of the word "Hello", for demo and test data.

``voiceid demo-data OUT_DIR`` writes clips of two synthetic voices, ``Steve`` and ``David``, and
the tests use a third, :data:`STRANGER`, as the unknown speaker. The model is the classic one of
Klatt (1980):

* **Source.** A Rosenberg glottal-flow pulse per pitch period, with a "hel-LO" pitch contour
  (level on the first syllable, a rise to the stressed second, then a declarative fall),
  cycle-to-cycle jitter and shimmer, and an extra one-pole spectral tilt. Aspiration noise,
  modulated by the glottal opening, gives breathiness; the /h/ onset is noise alone.
* **Filter.** A cascade of 2-pole resonators (run as their product, one all-pole filter)
  whose formant frequencies glide through h-e-l-o, retuned every :data:`FRAME_S` seconds, then
  lip radiation (a first difference).
* **Recording.** Near-silence before and after, a faint background noise floor, and a random
  peak level.

Every clip draws its own pitch, speaking rate, formant scale, level and noise from the generator
it is given, so two clips of one voice differ, and the same seed always gives the same samples.
"""

from __future__ import annotations

import re
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt
import soundfile as sf
from scipy.signal import lfilter

from pipeline.errors import DatasetError, ParameterError

__all__ = [
    "STRANGER",
    "VOICES",
    "VoiceSpec",
    "synthesize_hello",
    "write_demo_data",
]

FloatArray = npt.NDArray[np.float64]

MIN_SAMPLE_RATE = 8000  # Hz; below this F3 and then F2 would be left out
MAX_SAMPLE_RATE = 48000  # Hz; above this the 10th-order all-pole filter loses precision
FRAME_S = 0.004  # s between formant-coefficient updates
MAX_CLIPS_PER_VOICE = 1000  # file names are hello_000 .. hello_999, so they sort as numbers

# Phoneme durations at the nominal speaking rate, in seconds: h, ɛ, l, oʊ (0.65 s in all).
SEGMENT_S = (0.08, 0.14, 0.09, 0.34)
RING_OUT_S = 0.03  # s of filter ring-out kept after the last phoneme

# Formant targets (F1..F5, Hz) of a typical adult male (vocal-tract scale 1.0). /h/ takes the
# formants of the vowel after it, so it has no row of its own.
FORMANTS_EH = (550.0, 1800.0, 2500.0, 3500.0, 4500.0)
FORMANTS_L = (350.0, 1000.0, 2600.0, 3500.0, 4500.0)
FORMANTS_OW_ONSET = (450.0, 850.0, 2400.0, 3400.0, 4500.0)
FORMANTS_OW_OFFSET = (350.0, 700.0, 2300.0, 3400.0, 4500.0)
BANDWIDTHS_HZ = (80.0, 90.0, 140.0, 220.0, 300.0)
MAX_FORMANT_FRACTION = 0.45  # resonators above this fraction of the sample rate are left out

# Rosenberg pulse, as fractions of the pitch period: opening phase, then closing phase.
OPENING_FRACTION = 0.40
CLOSING_FRACTION = 0.16
TILT_REFERENCE_HZ = 3000.0  # VoiceSpec.tilt is the extra source attenuation at this frequency
NOISE_POLE = 0.9  # one-pole low-pass on aspiration, offsetting the +6 dB/octave of radiation
RADIATION_ZERO = 0.97  # lip radiation, 1 - 0.97 z^-1
H_TO_VOWEL_DB = -12.0  # RMS of the /h/ relative to the voiced part
BREATH_FLOOR = 0.3  # breath noise still flowing while the glottis is closed, relative to open

# Per-clip variation, drawn uniformly in these ranges.
PITCH_SPREAD = 0.08  # ± fraction of VoiceSpec.pitch_hz
RATE_SPREAD = 0.10  # ± fraction of the nominal speaking rate
FORMANT_SPREAD = 0.03  # ± fraction of VoiceSpec.formant_scale
PITCH_PEAK_RANGE = (1.15, 1.30)  # stressed-syllable peak, relative to the first syllable
PITCH_END_RANGE = (0.72, 0.85)  # final fall, relative to the first syllable
SILENCE_S_RANGE = (0.1, 0.3)  # s of near-silence before and, drawn again, after the word
NOISE_FLOOR_DB_RANGE = (-65.0, -55.0)  # background RMS relative to the clip's peak, dB
PEAK_DBFS_RANGE = (-12.0, -3.0)  # peak level of the clip; covers a ±4 dB loudness spread

_NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]*")


def _check_range(name: str, value: float, low: float, high: float) -> None:
    if not low <= value <= high:  # also refuses NaN
        raise ParameterError(f"{name}={value!r} must be in [{low:g}, {high:g}]")


@dataclass(frozen=True)
class VoiceSpec:
    """The fixed traits of one synthetic speaker; every clip varies around them.

    name: speaker label and folder name: letters, digits, ``_`` or ``-``.
    pitch_hz: median fundamental frequency of the word, Hz, in [50, 400].
    formant_scale: factor on all formant frequencies, in [0.7, 1.4]; the inverse of the
        vocal-tract length relative to a typical adult male (1.0).
    tilt: extra spectral tilt of the glottal source: attenuation at 3 kHz relative to DC, dB,
        in [0, 30]. Larger is a softer, darker voice.
    breathiness: RMS of aspiration noise relative to the voiced sound while voicing, in [0, 1].
    jitter: standard deviation of the cycle-to-cycle pitch perturbation, as a fraction of the
        period, in [0, 0.05].
    shimmer: standard deviation of the cycle-to-cycle amplitude perturbation, as a fraction of
        the amplitude, in [0, 0.3].
    """

    name: str
    pitch_hz: float
    formant_scale: float
    tilt: float
    breathiness: float
    jitter: float = 0.008
    shimmer: float = 0.04

    def __post_init__(self) -> None:
        if not _NAME_PATTERN.fullmatch(self.name):
            raise ParameterError(f"name={self.name!r} must be letters, digits, '_' or '-'")
        _check_range("pitch_hz", self.pitch_hz, 50.0, 400.0)
        _check_range("formant_scale", self.formant_scale, 0.7, 1.4)
        _check_range("tilt", self.tilt, 0.0, 30.0)
        _check_range("breathiness", self.breathiness, 0.0, 1.0)
        _check_range("jitter", self.jitter, 0.0, 0.05)
        _check_range("shimmer", self.shimmer, 0.0, 0.3)


# The demo speakers that write_demo_data writes by default, by name.
VOICES: dict[str, VoiceSpec] = {
    voice.name: voice
    for voice in (
        VoiceSpec("Steve", pitch_hz=110.0, formant_scale=0.92, tilt=6.0, breathiness=0.06),
        VoiceSpec(
            "David", pitch_hz=180.0, formant_scale=1.08, tilt=14.0, breathiness=0.20, shimmer=0.03
        ),
    )
}
# A third speaker, never written by default: the "unknown speaker" of tests and the service.
STRANGER = VoiceSpec(
    "Stranger", pitch_hz=140.0, formant_scale=1.0, tilt=10.0, breathiness=0.12, jitter=0.01
)


def synthesize_hello(
    voice: VoiceSpec, rng: np.random.Generator, sample_rate: int = 16000
) -> npt.NDArray[np.float32]:
    """One clip of ``voice`` saying "Hello": shape ``(n,)``, float32 in [-1, 1].

    The clip is 0.1-0.3 s of near-silence, about 0.6-0.75 s of speech, then 0.1-0.3 s of
    near-silence, with its peak at a random level in [-12, -3] dBFS. ``rng`` makes every random
    choice of the clip (pitch, rate, formants, noise, level); ``sample_rate`` (Hz) is in
    [8000, 48000].
    """
    _check_sample_rate(sample_rate)
    pitch_factor = rng.uniform(1.0 - PITCH_SPREAD, 1.0 + PITCH_SPREAD)
    rate = rng.uniform(1.0 - RATE_SPREAD, 1.0 + RATE_SPREAD)
    formant_factor = rng.uniform(1.0 - FORMANT_SPREAD, 1.0 + FORMANT_SPREAD)
    pitch_peak = rng.uniform(*PITCH_PEAK_RANGE)
    pitch_end = rng.uniform(*PITCH_END_RANGE)

    bounds = np.concatenate([[0.0], np.cumsum(SEGMENT_S) / rate])  # s: h|ɛ|l|oʊ boundaries
    n_speech = round((bounds[-1] + RING_OUT_S) * sample_rate)
    t = np.arange(n_speech) / sample_rate
    voicing, aspiration = _voicing_envelopes(t, bounds)
    f0 = voice.pitch_hz * pitch_factor * _pitch_contour(t, bounds, pitch_peak, pitch_end)
    flow = _glottal_flow(f0, voicing > 0.0, voice, rng, sample_rate)
    noise = _one_pole_lowpass(rng.standard_normal(n_speech), NOISE_POLE)

    source = np.stack(
        [
            _one_pole_lowpass(flow, _tilt_pole(voice.tilt, sample_rate)) * voicing,
            noise * voicing * (BREATH_FLOOR + (1.0 - BREATH_FLOOR) * flow),
            noise * aspiration,
        ]
    )
    formants = _formant_tracks(t, bounds, voice.formant_scale * formant_factor)
    voiced, breath, hiss = lfilter(
        [1.0, -RADIATION_ZERO], [1.0], _vocal_tract(source, formants, sample_rate), axis=-1
    )
    voiced_rms = _rms(voiced[voicing > 0.5])
    speech = (
        voiced
        + _scale_to_rms(breath, voicing > 0.5, voice.breathiness * voiced_rms)
        + _scale_to_rms(hiss, aspiration > 0.5, _db_to_ratio(H_TO_VOWEL_DB) * voiced_rms)
    )
    return _record(speech, rng, sample_rate)


def write_demo_data(
    out_dir: Path,
    *,
    clips_per_voice: int = 40,
    seed: int = 0,
    sample_rate: int = 16000,
    voices: Sequence[VoiceSpec] | None = None,
) -> dict[str, list[Path]]:
    """Write ``out_dir/<voice name>/hello_000.wav ...``, 16-bit PCM, for each voice; return the
    written paths per voice name, in clip order.

    Clip ``k`` of a voice depends only on ``seed``, the voice's name and ``k``, so the files are
    byte-identical from run to run, and adding clips or voices leaves the others unchanged.
    ``out_dir`` is created if missing; ``clips_per_voice`` is in [1, 1000], ``seed`` >= 0,
    ``sample_rate`` (Hz) in [8000, 48000], and ``voices`` (default :data:`VOICES`) have distinct
    names. Raises :class:`ParameterError` for an argument out of range, and
    :class:`DatasetError`, before anything is written, when ``out_dir`` is not a folder or a
    target file already exists: existing files are never overwritten.
    """
    chosen = list(VOICES.values()) if voices is None else list(voices)
    _check_demo_arguments(chosen, clips_per_voice, seed, sample_rate)
    folders = {voice.name: out_dir / voice.name for voice in chosen}
    targets = {
        name: [folder / f"hello_{k:03d}.wav" for k in range(clips_per_voice)]
        for name, folder in folders.items()
    }
    _refuse_existing([out_dir, *folders.values()], [p for paths in targets.values() for p in paths])
    for voice in chosen:
        _make_folder(folders[voice.name])
        for k, path in enumerate(targets[voice.name]):
            rng = np.random.default_rng(_clip_seed(seed, voice.name, k))
            _write_new_wav(path, synthesize_hello(voice, rng, sample_rate), sample_rate)
    return targets


def _check_sample_rate(sample_rate: int) -> None:
    if not MIN_SAMPLE_RATE <= sample_rate <= MAX_SAMPLE_RATE:
        raise ParameterError(
            f"sample_rate={sample_rate!r} must be in [{MIN_SAMPLE_RATE}, {MAX_SAMPLE_RATE}]"
        )


def _check_demo_arguments(
    voices: list[VoiceSpec], clips_per_voice: int, seed: int, sample_rate: int
) -> None:
    if clips_per_voice < 1:
        raise ParameterError(f"clips_per_voice={clips_per_voice!r} must be >= 1")
    if clips_per_voice > MAX_CLIPS_PER_VOICE:
        raise ParameterError(
            f"clips_per_voice={clips_per_voice!r} must be <= {MAX_CLIPS_PER_VOICE}"
        )
    if seed < 0:
        raise ParameterError(f"seed={seed!r} must be >= 0")
    _check_sample_rate(sample_rate)
    if not voices:
        raise ParameterError("voices is empty; at least one voice is needed")
    seen: set[str] = set()
    for voice in voices:
        if voice.name in seen:
            raise ParameterError(f"voices has the name {voice.name!r} twice; names must be unique")
        seen.add(voice.name)


def _refuse_existing(folders: list[Path], files: list[Path]) -> None:
    for folder in folders:
        if _exists(folder) and not folder.is_dir():
            raise DatasetError(f"{folder} exists and is not a folder")
    for path in files:
        if _exists(path):
            raise DatasetError(_exists_message(path))


def _exists(path: Path) -> bool:
    """Whether ``path`` exists; a name the system will not look up is refused, naming it."""
    try:
        return path.exists()
    except OSError as exc:
        raise DatasetError(f"cannot write {str(path)!r}: {exc.strerror}") from exc


def _make_folder(folder: Path) -> None:
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DatasetError(f"cannot write {str(folder)!r}: {exc.strerror}") from exc


def _exists_message(path: Path) -> str:
    return f"{path} already exists; refusing to overwrite it"


def _write_new_wav(path: Path, clip: npt.NDArray[np.float32], sample_rate: int) -> None:
    try:
        file = path.open("xb")  # "x": a file that appeared since the check is not replaced either
    except FileExistsError as error:
        raise DatasetError(_exists_message(path)) from error
    with file:
        sf.write(file, clip, sample_rate, format="WAV", subtype="PCM_16")


def _clip_seed(seed: int, voice_name: str, clip_index: int) -> np.random.SeedSequence:
    # Keyed by name, not position, so a voice's clips do not depend on which others are written.
    return np.random.SeedSequence(seed, spawn_key=(zlib.crc32(voice_name.encode()), clip_index))


def _glide(t: FloatArray, key_times: Sequence[float], key_values: npt.ArrayLike) -> FloatArray:
    """Raised-cosine interpolation through ``(key_times[i], key_values[i])``, held at the ends.

    ``t`` has shape ``(n,)``; ``key_values`` has shape ``(k,)`` or ``(k, d)`` and the result
    ``(n,)`` or ``(n, d)``. ``key_times`` must increase strictly.
    """
    times = np.asarray(key_times, dtype=np.float64)
    values = np.asarray(key_values, dtype=np.float64)
    segment = np.clip(np.searchsorted(times, t, side="right") - 1, 0, len(times) - 2)
    fraction = np.clip((t - times[segment]) / np.diff(times)[segment], 0.0, 1.0)
    ease = 0.5 - 0.5 * np.cos(np.pi * fraction)
    if values.ndim == 2:
        ease = ease[:, np.newaxis]
    result: FloatArray = values[segment] + (values[segment + 1] - values[segment]) * ease
    return result


def _voicing_envelopes(t: FloatArray, bounds: FloatArray) -> tuple[FloatArray, FloatArray]:
    """Amplitude of voicing and of /h/ aspiration over time ``t`` (s), each shape ``(n,)``."""
    _, h_end, eh_end, l_end, ow_end = bounds
    ow = ow_end - l_end
    voicing = _glide(
        t,
        [0.0, h_end - 0.01, h_end + 0.025, eh_end, (eh_end + l_end) / 2, l_end, l_end + 0.3 * ow,
         ow_end - 0.06, ow_end],
        [0.0, 0.0, 1.0, 0.9, 0.65, 0.9, 1.0, 0.6, 0.0],
    )  # fmt: skip
    aspiration = _glide(t, [0.0, 0.02, h_end - 0.005, h_end + 0.025], [0.0, 1.0, 1.0, 0.0])
    return voicing, aspiration


def _pitch_contour(t: FloatArray, bounds: FloatArray, peak: float, end: float) -> FloatArray:
    """F0 over time ``t`` relative to its median while voiced, shape ``(n,)``: "hel-LO"."""
    _, h_end, eh_end, l_end, ow_end = bounds
    voiced = t >= h_end
    contour = _glide(
        t, [h_end, eh_end, l_end + 0.3 * (ow_end - l_end), ow_end], [1.0, 0.95, peak, end]
    )
    result: FloatArray = contour / np.median(contour[voiced])
    return result


def _formant_tracks(t: FloatArray, bounds: FloatArray, scale: float) -> FloatArray:
    """Formant frequencies (Hz) over time ``t`` (s), shape ``(n, 5)``, through h-e-l-o."""
    _, _, eh_end, l_end, ow_end = bounds
    key_times = [
        0.0,
        eh_end - 0.25 * (eh_end - bounds[1]),
        (eh_end + l_end) / 2,
        l_end + 0.25 * (ow_end - l_end),
        ow_end,
    ]
    targets = [FORMANTS_EH, FORMANTS_EH, FORMANTS_L, FORMANTS_OW_ONSET, FORMANTS_OW_OFFSET]
    return scale * _glide(t, key_times, targets)


def _glottal_flow(
    f0: FloatArray,
    voiced: npt.NDArray[np.bool_],
    voice: VoiceSpec,
    rng: np.random.Generator,
    sample_rate: int,
) -> FloatArray:
    """Rosenberg glottal flow with jitter and shimmer, shape ``(n,)``, peak about 1.

    ``f0`` (Hz, shape ``(n,)``) is the intended pitch at each sample; pulses run from the first
    ``voiced`` sample to the end.
    """
    n = len(f0)
    start = int(np.argmax(voiced))
    max_cycles = int(n * f0.max() / sample_rate * 1.2) + 2
    period_noise = 1.0 + voice.jitter * rng.standard_normal(max_cycles)
    onsets: list[float] = []
    position = float(start)
    while position < n:  # each period follows the contour where it starts
        onsets.append(position)
        position += sample_rate / (f0[int(position)] * period_noise[len(onsets) - 1])
    onset = np.array(onsets)
    period = np.diff(np.append(onset, position))
    amplitude = np.maximum(1.0 + voice.shimmer * rng.standard_normal(len(onset)), 0.0)

    samples = np.arange(start, n)
    cycle = np.searchsorted(onset, samples, side="right") - 1
    phase = (samples - onset[cycle]) / period[cycle]
    opening = 0.5 - 0.5 * np.cos(np.pi * phase / OPENING_FRACTION)
    closing = np.cos(0.5 * np.pi * (phase - OPENING_FRACTION) / CLOSING_FRACTION)
    pulse = np.where(
        phase < OPENING_FRACTION,
        opening,
        np.where(phase < OPENING_FRACTION + CLOSING_FRACTION, closing, 0.0),
    )
    flow = np.zeros(n)
    flow[start:] = pulse * amplitude[cycle]
    return flow


def _tilt_pole(tilt_db: float, sample_rate: int) -> float:
    """Pole of the one-pole low-pass that is ``tilt_db`` down at 3 kHz relative to DC."""
    if tilt_db <= 0.0:
        return 0.0
    # |(1 - a) / (1 - a e^-jw)|^2 = r^2 is a quadratic in a whose roots multiply to 1.
    r2 = _db_to_ratio(-tilt_db) ** 2
    cos_w = np.cos(2.0 * np.pi * TILT_REFERENCE_HZ / sample_rate)
    a, b = 1.0 - r2, 1.0 - r2 * cos_w
    return float((b - np.sqrt(b * b - a * a)) / a)


def _one_pole_lowpass(x: FloatArray, pole: float) -> FloatArray:
    """``(1 - pole) / (1 - pole z^-1)`` along the last axis: unit gain at DC."""
    result: FloatArray = lfilter([1.0 - pole], [1.0, -pole], x, axis=-1)
    return result


def _vocal_tract(source: FloatArray, formants: FloatArray, sample_rate: int) -> FloatArray:
    """Cascade of 2-pole resonators, unit gain at DC, retuned every :data:`FRAME_S` seconds.

    ``source`` has shape ``(channels, n)`` and ``formants`` (Hz) shape ``(n, 5)``; the result
    has the shape of ``source``. Resonators that would come near Nyquist are left out.

    The cascade is run as one all-pole filter per frame (one ``lfilter`` call instead of one
    per resonator), whose state is rebuilt from the last outputs, so the recursion continues
    exactly as if the coefficients changed between two samples.
    """
    n = source.shape[-1]
    keep = formants.max(axis=0) < MAX_FORMANT_FRACTION * sample_rate
    frame = max(1, round(FRAME_S * sample_rate))
    starts = np.arange(0, n, frame)
    centres = np.minimum(starts + frame // 2, n - 1)
    radius = np.exp(-np.pi * np.asarray(BANDWIDTHS_HZ)[keep] / sample_rate)  # (sections,)
    angle = 2.0 * np.pi * formants[centres][:, keep] / sample_rate  # (frames, sections)
    denominators = np.ones((len(starts), 1))
    for a1, a2 in zip(-2.0 * radius[:, np.newaxis] * np.cos(angle.T), radius**2, strict=True):
        quadratic = np.stack([np.ones_like(a1), a1, np.full_like(a1, a2)], axis=1)
        denominators = _multiply_polynomials(denominators, quadratic)

    order = denominators.shape[1] - 1
    padded = np.pad(source, ((0, 0), (order, 0)))  # zero history before the first sample
    output = np.zeros_like(padded)
    # In transposed direct form II with only b0, after output y[n] the state is
    # z[k] = -sum(a[m] * y[n + k + 1 - m] for m in k+1..order); lags[k, j] is the m for y[n - j].
    lags = np.arange(1, order + 1)[:, np.newaxis] + np.arange(order)
    for begin, denominator in zip(starts + order, denominators, strict=True):
        history = output[:, begin - order : begin][:, ::-1]  # y[n], y[n-1], ...
        state = -history @ np.append(denominator, np.zeros(order))[lags].T
        end = begin + frame
        output[:, begin:end], _ = lfilter(
            [denominator.sum()], denominator, padded[:, begin:end], axis=-1, zi=state
        )
    return output[:, order:]


def _multiply_polynomials(left: FloatArray, right: FloatArray) -> FloatArray:
    """Row-wise product of polynomial coefficients, shapes ``(r, p)`` and ``(r, q)``."""
    product = np.zeros((left.shape[0], left.shape[1] + right.shape[1] - 1))
    for power in range(right.shape[1]):
        product[:, power : power + left.shape[1]] += left * right[:, power, np.newaxis]
    return product


def _rms(x: FloatArray) -> float:
    return float(np.sqrt(np.mean(np.square(x)))) if x.size else 0.0


def _scale_to_rms(x: FloatArray, where: npt.NDArray[np.bool_], target: float) -> FloatArray:
    """``x`` scaled so that its RMS over the samples ``where`` is ``target``."""
    current = _rms(x[where])
    result: FloatArray = x * (target / current) if current > 0.0 else np.zeros_like(x)
    return result


def _db_to_ratio(db: float) -> float:
    return float(10.0 ** (db / 20.0))


def _record(
    speech: FloatArray, rng: np.random.Generator, sample_rate: int
) -> npt.NDArray[np.float32]:
    """Pad ``speech`` with near-silence, add a background floor, and set the peak level."""
    before, after = (round(rng.uniform(*SILENCE_S_RANGE) * sample_rate) for _ in range(2))
    clip = np.zeros(before + len(speech) + after)
    clip[before : before + len(speech)] = speech
    floor = _one_pole_lowpass(rng.standard_normal(len(clip)), NOISE_POLE)
    floor_gain = _db_to_ratio(rng.uniform(*NOISE_FLOOR_DB_RANGE)) * np.abs(speech).max()
    clip += floor * (floor_gain / _rms(floor))
    clip *= _db_to_ratio(rng.uniform(*PEAK_DBFS_RANGE)) / np.abs(clip).max()
    return clip.astype(np.float32)
