"""The naive baseline for bench/serve.py: the obvious way to serve a Keras model.

FastAPI with an ``UploadFile``, ``librosa.load`` to decode, the same histogram, and
``model.predict`` per request. Run: VOICEID_MODEL_DIR=models/default uvicorn bench.naive_server:app
"""

from __future__ import annotations

import io
import os
from pathlib import Path
from typing import Any

import keras
import librosa
import numpy as np
from fastapi import FastAPI, UploadFile

from pipeline.bundle import KERAS_FILE, load_bundle
from pipeline.features import histogram

MODEL_DIR = Path(os.environ.get("VOICEID_MODEL_DIR", "models/default"))
BUNDLE = load_bundle(MODEL_DIR)  # the labels, feature config and normalisation; not its network
CFG = BUNDLE.feature_config
MEAN = BUNDLE.network.mean.astype(np.float32)
SCALE = BUNDLE.network.scale.astype(np.float32)
MODEL = keras.saving.load_model(MODEL_DIR / KERAS_FILE, compile=False)

app = FastAPI()


@app.post("/predict")
def predict(file: UploadFile) -> dict[str, Any]:
    y, _ = librosa.load(io.BytesIO(file.file.read()), sr=CFG.sample_rate)
    x = (histogram(y, CFG)[: CFG.n_bands] - MEAN) / SCALE  # the histogram, without the spread
    scores = MODEL.predict(x[None, :], verbose=0)[0]
    best = int(scores.argmax())
    return {"speaker": BUNDLE.labels[best], "confidence": float(scores[best])}
