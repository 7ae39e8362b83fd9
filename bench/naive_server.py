"""The naive baseline for bench/serve.py: the obvious way to serve a Keras model.

FastAPI with an ``UploadFile``, ``librosa.load`` to decode, the same histogram, and
``model.predict`` per request. Run: VOICEID_MODEL_DIR=models/default uvicorn bench.naive_server:app
"""

from __future__ import annotations

import io
import json
import os
from pathlib import Path
from typing import Any

import keras
import librosa
import numpy as np
from fastapi import FastAPI, UploadFile

from pipeline.config import FeatureConfig
from pipeline.features import histogram

MODEL_DIR = Path(os.environ.get("VOICEID_MODEL_DIR", "models/default"))
META = json.loads((MODEL_DIR / "metadata.json").read_text())
CFG = FeatureConfig.from_dict(META["feature_config"])
MEAN = np.asarray(META["normalisation"]["mean"], dtype=np.float32)
SCALE = np.asarray(META["normalisation"]["scale"], dtype=np.float32)
MODEL = keras.saving.load_model(MODEL_DIR / "model.keras", compile=False)

app = FastAPI()


@app.post("/predict")
def predict(file: UploadFile) -> dict[str, Any]:
    y, _ = librosa.load(io.BytesIO(file.file.read()), sr=CFG.sample_rate)
    x = (histogram(y, CFG) - MEAN) / SCALE
    scores = MODEL.predict(x[None, :], verbose=0)[0]
    best = int(scores.argmax())
    return {"speaker": META["labels"][best], "confidence": float(scores[best])}
