"""Degraded copies of training clips: the conditions people really record in.

Each copy goes through one recording condition drawn from :data:`CONDITIONS` and is then played
back at a random level, so the network learns what a voice keeps across them rather than what a
microphone, a room, a phone line or a codec adds:

- ``overdrive``: gain into hard clipping (or a soft ``tanh`` saturation), the peak driven to
  1-5 times full scale;
- ``noise``: white, pink, brown or babble-like noise at 5-30 dB SNR;
- ``telephone``: a 200-400 to 3000-3600 Hz band-pass, mostly followed by mu-law companding;
- ``reverb``: a synthetic room (exponentially decaying noise, RT60 0.2-1.2 s);
- ``codec``: a low-bitrate MP3 or Ogg/Vorbis round trip at 8 or 16 kHz (libsndfile);
- ``dull``: a microphone-like tilt with a high-frequency roll-off from 1.8-4 kHz;
- ``channel``: a stereo pair mixed down with a small delay between its channels, or a
  resampling round trip through another rate (the stereo and resampling paths of decoding).

Every function is pure: the waveform and a ``numpy.random.Generator`` in, a float32 waveform of
the same length out. :func:`speech_crop` is the exception: a random part of the clip's speech,
so the network learns a voice from a part of a word as well as from the whole. Which copy a
training clip gets is fixed by the seed, the copy number and the clip's content
(``pipeline.dataset``), so the copies are cached like the clean rows.
"""

from __future__ import annotations

import io
from collections.abc import Callable

import numpy as np
import soundfile as sf
import soxr

__all__ = [
    "CONDITIONS",
    "GAIN_DB",
    "SNR_DB",
    "add_noise",
    "channel",
    "codec",
    "degrade",
    "draw_condition",
    "dull",
    "overdrive",
    "reverb",
    "speech_crop",
    "telephone",
]

GAIN_DB = (-30.0, 10.0)  # playback level of every copy, clipped at full scale
SNR_DB = (5.0, 30.0)  # added noise, against the clip's mean power
DRIVE_DB = (0.0, 14.0)  # how far overdrive pushes the peak beyond full scale
RT60_S = (0.2, 1.2)  # reverberation time of the synthetic rooms
ROLL_OFF_HZ = (1800.0, 4000.0)  # where a dull channel starts to cut, 1-4 dB per 100 Hz above
MU = 255.0  # mu-law companding, as on G.711 telephone lines
CROP_SHARE = (0.6, 0.9)  # a crop keeps this share of the clip's speech
CROP_FRAME_S = 0.01  # frames whose level finds the speech
CROP_SOUND_DB = 40.0  # frames within this many dB of the loudest are speech
# libsndfile's MP3 compression levels for about 36, 18 and 9 kbit/s at 8 kHz: the lowest keeps
# only what lies below about 2.5 kHz, and it is drawn as often as the others.
MP3_LEVELS = (0.5, 0.85, 0.97)

Condition = Callable[[np.ndarray, int, np.random.Generator], np.ndarray]


def _coloured_noise(n: int, rng: np.random.Generator, colour: str) -> np.ndarray:
    """White, pink (1/f power) or brown (1/f^2 power) Gaussian noise of ``n`` samples."""
    white = rng.standard_normal(n)
    if colour == "white":
        return white
    spectrum = np.fft.rfft(white)
    freqs = np.arange(len(spectrum), dtype=np.float64)
    freqs[0] = 1.0
    exponent = 0.5 if colour == "pink" else 1.0
    return np.fft.irfft(spectrum / freqs**exponent, n=n)


def _babble(n: int, sr: int, rng: np.random.Generator) -> np.ndarray:
    """Babble-like noise: 3-7 talkers of speech-band noise, each with a syllable-rate envelope."""
    from scipy import signal  # scipy.signal loads scipy.stats: 0.5 s, for training only

    t = np.arange(n) / sr
    out = np.zeros(n)
    for _ in range(int(rng.integers(3, 8))):
        band = [rng.uniform(200, 400), rng.uniform(2500, min(3800, 0.45 * sr))]
        sos = signal.butter(2, band, btype="bandpass", fs=sr, output="sos")
        voice = signal.sosfilt(sos, rng.standard_normal(n))
        envelope = 0.5 + 0.5 * np.sin(2 * np.pi * rng.uniform(3, 6) * t + rng.uniform(0, 2 * np.pi))
        out += voice * envelope**2
    return out


def add_noise(y: np.ndarray, sr: int, rng: np.random.Generator) -> np.ndarray:
    """``y`` plus white, pink, brown or babble-like noise at an SNR drawn from :data:`SNR_DB`."""
    colour = str(rng.choice(["white", "pink", "brown", "babble"]))
    noise = _babble(len(y), sr, rng) if colour == "babble" else _coloured_noise(len(y), rng, colour)
    snr_db = rng.uniform(*SNR_DB)
    power = np.mean(y**2) + 1e-12
    return y + noise * np.sqrt(power / 10 ** (snr_db / 10) / (np.mean(noise**2) + 1e-12))


def overdrive(y: np.ndarray, sr: int, rng: np.random.Generator) -> np.ndarray:
    """Gain that drives the peak 0-14 dB past full scale, into hard (or soft) clipping."""
    drive = 10 ** (rng.uniform(*DRIVE_DB) / 20) / (np.max(np.abs(y)) + 1e-12)
    if rng.random() < 0.3:
        return np.tanh(y * drive)
    return np.clip(y * drive, -1.0, 1.0)


def _mu_law(y: np.ndarray) -> np.ndarray:
    """An 8-bit mu-law round trip: compress, quantise to 256 levels, expand."""
    y = np.clip(y, -1.0, 1.0)
    code = np.round(np.sign(y) * np.log1p(MU * np.abs(y)) / np.log1p(MU) * 127) / 127
    return np.sign(code) * ((1 + MU) ** np.abs(code) - 1) / MU


def telephone(y: np.ndarray, sr: int, rng: np.random.Generator) -> np.ndarray:
    """A telephone line: a band-pass of random edges and order, mostly with mu-law companding."""
    from scipy import signal  # scipy.signal loads scipy.stats: 0.5 s, for training only

    band = [rng.uniform(200, 400), rng.uniform(3000, min(3600, 0.45 * sr))]
    sos = signal.butter(int(rng.integers(2, 7)), band, btype="bandpass", fs=sr, output="sos")
    line = signal.sosfilt(sos, y)
    if rng.random() < 0.7:
        line = _mu_law(line * 10 ** (rng.uniform(-6, 6) / 20))
    return line


def reverb(y: np.ndarray, sr: int, rng: np.random.Generator) -> np.ndarray:
    """``y`` in a synthetic room: convolved with exponentially decaying noise, same peak."""
    from scipy import signal  # scipy.signal loads scipy.stats: 0.5 s, for training only

    rt60 = rng.uniform(*RT60_S)
    n = max(1, int(rt60 * sr))
    response = rng.standard_normal(n) * np.exp(-6.9 * np.arange(n) / sr / rt60)
    response[: int(rng.uniform(0.002, 0.02) * sr)] = 0.0  # the first reflection arrives late
    response[0] = rng.uniform(0.5, 3.0)  # the direct path
    wet = signal.fftconvolve(y, response)[: len(y)]
    return wet * (np.max(np.abs(y)) / (np.max(np.abs(wet)) + 1e-12))


def codec(y: np.ndarray, sr: int, rng: np.random.Generator) -> np.ndarray:
    """A lossy round trip: MP3 (mostly) or Ogg/Vorbis at a random bitrate, at 8 kHz or ``sr``."""
    rate = int(rng.choice([8000, sr]))
    x = soxr.resample(y, sr, rate) if rate != sr else y
    x = np.clip(x, -1.0, 1.0).astype(np.float32)
    buffer = io.BytesIO()
    if rng.random() < 0.75:
        level = float(rng.choice(MP3_LEVELS))
        sf.write(buffer, x, rate, format="MP3", subtype="MPEG_LAYER_III",
                 compression_level=level, bitrate_mode="CONSTANT")  # fmt: skip
    else:
        level = float(rng.uniform(0.3, 1.0))
        sf.write(buffer, x, rate, format="OGG", subtype="VORBIS", compression_level=level)
    buffer.seek(0)
    decoded, _ = sf.read(buffer, dtype="float32", always_2d=True)
    out = decoded.mean(axis=1)
    out = soxr.resample(out, rate, sr) if rate != sr else out
    return np.pad(out[: len(y)], (0, max(0, len(y) - len(out))))


def dull(y: np.ndarray, sr: int, rng: np.random.Generator) -> np.ndarray:
    """A duller microphone or a narrow-band codec: a spectral tilt of +-3 dB an octave and a
    roll-off of 1-4 dB per 100 Hz above a corner at 1.8-4 kHz."""
    spectrum = np.fft.rfft(y)
    freqs = np.fft.rfftfreq(len(y), 1 / sr)
    gain_db = rng.uniform(-3, 3) * np.log2(np.maximum(freqs, 50.0) / 1000.0)
    gain_db -= np.maximum(freqs - rng.uniform(*ROLL_OFF_HZ), 0) / 100 * rng.uniform(1.0, 4.0)
    return np.fft.irfft(spectrum * 10 ** (gain_db / 20), n=len(y))


def channel(y: np.ndarray, sr: int, rng: np.random.Generator) -> np.ndarray:
    """The stereo and resampling paths of decoding: a stereo pair with up to 1 ms between its
    channels mixed down to mono, or a round trip through another sample rate."""
    if rng.random() < 0.5:
        delay = int(rng.integers(0, max(2, int(0.001 * sr))))
        other = np.concatenate([np.zeros(delay), y[: len(y) - delay]]) * rng.uniform(0.5, 1.0)
        return 0.5 * (y + other)
    rate = int(rng.choice([8000, 11025, 22050, 44100]))
    out = soxr.resample(soxr.resample(y, sr, rate), rate, sr)
    return np.pad(out[: len(y)], (0, max(0, len(y) - len(out))))


CONDITIONS: dict[str, Condition] = {
    "overdrive": overdrive,
    "noise": add_noise,
    "telephone": telephone,
    "reverb": reverb,
    "codec": codec,
    "dull": dull,
    "channel": channel,
}


def draw_condition(rng: np.random.Generator) -> str:
    """The name of the condition in :data:`CONDITIONS` a copy goes through: the first thing
    :func:`degrade` draws, so that which condition made a copy is known without making it."""
    return list(CONDITIONS)[int(rng.integers(len(CONDITIONS)))]


def degrade(y: np.ndarray, sample_rate: int, rng: np.random.Generator) -> np.ndarray:
    """``y`` (1-D float32) through one condition drawn from :data:`CONDITIONS`, then played back
    at a level drawn from :data:`GAIN_DB` and clipped at full scale. Returns float32, same length.
    """
    name = draw_condition(rng)
    x = CONDITIONS[name](y.astype(np.float64), sample_rate, rng)
    gain = 10 ** (rng.uniform(*GAIN_DB) / 20)
    return np.clip(x * gain, -1.0, 1.0).astype(np.float32)


def speech_crop(y: np.ndarray, sample_rate: int, rng: np.random.Generator) -> np.ndarray:
    """A random part of ``y``'s speech (the span of 10 ms frames within ``CROP_SOUND_DB`` of the
    loudest), ``CROP_SHARE`` of its length, anywhere within it. Returns float32."""
    frame = max(1, round(CROP_FRAME_S * sample_rate))
    n_frames = max(1, len(y) // frame)
    power = np.mean(y[: n_frames * frame].astype(np.float64).reshape(n_frames, -1) ** 2, axis=1)
    level = 10 * np.log10(power + 1e-20)
    sound = np.flatnonzero(level >= level.max() - CROP_SOUND_DB)
    start, stop = sound[0] * frame, (sound[-1] + 1) * frame
    length = max(1, round(rng.uniform(*CROP_SHARE) * (stop - start)))
    offset = start + int(rng.integers(0, stop - start - length + 1))
    return y[offset : offset + length].astype(np.float32)
