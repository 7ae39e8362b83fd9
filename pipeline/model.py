"""The Keras 60-6-N model and its training by backpropagation.

Several candidate networks (``TrainConfig.candidates``) are trained side by side in one batched
graph from different initial weights, each with its own early stopping that restores its best
weights; the candidate with the lowest validation loss becomes the Keras model. One training loop
per epoch runs inside a ``tf.function``: ``model.fit`` costs about 35 ms of overhead per epoch for
this tiny network, the whole of a 300-epoch run.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import cast

import keras
import numpy as np
import tensorflow as tf

from pipeline.config import TrainConfig
from pipeline.errors import ParameterError
from pipeline.network import Network, OutputActivation

__all__ = ["FitResult", "build_model", "fit", "network_from_model", "resolve_device"]

MIN_DELTA = 1e-4  # a validation loss must drop by this much to count as an improvement


def output_activation(cfg: TrainConfig) -> OutputActivation:
    return "softmax" if cfg.loss == "crossentropy" else "sigmoid"


def build_model(
    n_inputs: int, n_classes: int, *, hidden: int = 6, output: OutputActivation = "softmax"
) -> keras.Model:
    """``Input(n_inputs) -> Dense(hidden, sigmoid) -> Dense(n_classes, output)``."""
    return keras.Sequential(
        [
            keras.Input((n_inputs,), name="histogram"),
            keras.layers.Dense(hidden, activation="sigmoid", name="hidden"),
            keras.layers.Dense(n_classes, activation=output, name="speaker"),
        ],
        name=f"voiceid_{n_inputs}_{hidden}_{n_classes}",
    )


def resolve_device(device: str) -> str:
    """The TensorFlow device string for ``auto``, ``cpu`` or ``gpu``."""
    gpus = tf.config.list_physical_devices("GPU")
    if device == "gpu" and not gpus:
        raise ParameterError("device='gpu' was asked for, but TensorFlow sees no GPU")
    if device == "cpu" or not gpus:
        return "/CPU:0"
    return "/GPU:0"


@dataclass
class FitResult:
    model: keras.Model
    history: dict[str, list[float]]  # per epoch, of the chosen candidate
    best_epoch: int
    epochs_run: int
    candidate: int
    candidate_val_losses: list[float]
    device: str


class _Candidates:
    """K networks' weights as batched variables: kernels (K, D, H) and (K, H, N)."""

    def __init__(self, rng: np.random.Generator, k: int, d: int, h: int, n: int) -> None:
        def glorot(fan_in: int, fan_out: int) -> np.ndarray:
            limit = np.sqrt(6.0 / (fan_in + fan_out))
            return rng.uniform(-limit, limit, (k, fan_in, fan_out)).astype(np.float32)

        self.w1 = tf.Variable(glorot(d, h), name="w1")
        self.b1 = tf.Variable(np.zeros((k, 1, h), np.float32), name="b1")
        self.w2 = tf.Variable(glorot(h, n), name="w2")
        self.b2 = tf.Variable(np.zeros((k, 1, n), np.float32), name="b2")
        self.variables = [self.w1, self.b1, self.w2, self.b2]

    def logits(self, x: tf.Tensor) -> tf.Tensor:
        hidden = tf.sigmoid(tf.einsum("bd,kdh->kbh", x, self.w1) + self.b1)
        return tf.einsum("kbh,khn->kbn", hidden, self.w2) + self.b2

    def snapshot(self) -> list[np.ndarray]:
        return [v.numpy() for v in self.variables]


def _per_sample_loss(logits: tf.Tensor, onehot: tf.Tensor, loss: str) -> tf.Tensor:
    """(K, B) loss of each candidate on each sample."""
    targets = tf.broadcast_to(onehot, tf.shape(logits))
    if loss == "crossentropy":
        return tf.nn.softmax_cross_entropy_with_logits(labels=targets, logits=logits)
    return tf.reduce_mean(tf.square(tf.sigmoid(logits) - targets), axis=-1)


def fit(
    x_train: np.ndarray,
    y_train: np.ndarray,
    x_val: np.ndarray,
    y_val: np.ndarray,
    n_classes: int,
    cfg: TrainConfig,
) -> FitResult:
    """Train on standardised features ``x_*`` (B, D) with integer labels ``y_*`` (B,)."""
    keras.utils.set_random_seed(cfg.seed)
    rng = np.random.default_rng(cfg.seed)
    device = resolve_device(cfg.device)
    weights = _class_weights(y_train, n_classes) if cfg.class_weights else np.ones(n_classes)
    with tf.device(device):
        return _fit_on_device(x_train, y_train, x_val, y_val, n_classes, weights, cfg, rng, device)


def _class_weights(y: np.ndarray, n_classes: int) -> np.ndarray:
    counts = np.bincount(y, minlength=n_classes).astype(np.float64)
    return len(y) / (n_classes * np.maximum(counts, 1))


def _fit_on_device(
    x_train: np.ndarray,
    y_train: np.ndarray,
    x_val: np.ndarray,
    y_val: np.ndarray,
    n_classes: int,
    class_weights: np.ndarray,
    cfg: TrainConfig,
    rng: np.random.Generator,
    device: str,
) -> FitResult:
    eye = np.eye(n_classes, dtype=np.float32)
    xt, tt = tf.constant(x_train, tf.float32), tf.constant(eye[y_train])
    wt = tf.constant(class_weights[y_train].astype(np.float32))
    xv, tv = tf.constant(x_val, tf.float32), tf.constant(eye[y_val])
    yv_idx = tf.constant(y_val, tf.int64)
    k = cfg.candidates
    nets = _Candidates(rng, k, x_train.shape[1], cfg.hidden, n_classes)
    optimizer = keras.optimizers.Adam(cfg.learning_rate)
    n = len(x_train)
    batch = min(cfg.batch_size, n)
    steps = max(1, n // batch)

    def evaluate(x: tf.Tensor, t: tf.Tensor, idx: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        logits = nets.logits(x)
        loss = tf.reduce_mean(_per_sample_loss(logits, t, cfg.loss), axis=1)
        hits = tf.cast(tf.argmax(logits, axis=-1) == idx[None, :], tf.float32)
        return loss, tf.reduce_mean(hits, axis=1)

    @tf.function
    def epoch(order: tf.Tensor) -> tuple[tf.Tensor, ...]:
        # Training loss and accuracy are running means over the epoch's batches, as Keras
        # reports them: a separate pass over the training rows cost as much as the updates.
        loss_sum, hit_sum = tf.zeros([k]), tf.zeros([k])
        for i in tf.range(steps):
            idx = order[i * batch : (i + 1) * batch]
            xb, tb, wb = tf.gather(xt, idx), tf.gather(tt, idx), tf.gather(wt, idx)
            with tf.GradientTape() as tape:
                logits = nets.logits(xb)
                per_sample = _per_sample_loss(logits, tb, cfg.loss) * wb[None, :]
                batch_loss = tf.reduce_mean(per_sample, axis=1)
                # Summing over candidates keeps their gradients independent of each other.
                total = tf.reduce_sum(batch_loss)
                if cfg.l2 > 0:  # weight decay keeps scores from saturating on easy data
                    total += cfg.l2 * (
                        tf.reduce_sum(tf.square(nets.w1)) + tf.reduce_sum(tf.square(nets.w2))
                    )
            grads = tape.gradient(total, nets.variables)
            optimizer.apply_gradients(zip(grads, nets.variables, strict=True))
            loss_sum += batch_loss
            hits = tf.argmax(logits, axis=-1) == tf.argmax(tb, axis=-1)[None, :]
            hit_sum += tf.reduce_mean(tf.cast(hits, tf.float32), axis=1)
        return (loss_sum / steps, hit_sum / steps, *evaluate(xv, tv, yv_idx))

    best_loss = np.full(k, np.inf)
    best_epoch = np.zeros(k, dtype=int)
    best_weights = nets.snapshot()
    history: dict[str, list[np.ndarray]] = {
        "loss": [],
        "accuracy": [],
        "val_loss": [],
        "val_accuracy": [],
    }
    epochs_run = 0
    for ep in range(cfg.max_epochs):
        outputs = [o.numpy() for o in epoch(tf.constant(rng.permutation(n)))]
        for name, value in zip(history, outputs, strict=True):
            history[name].append(value)
        epochs_run = ep + 1
        improved = outputs[2] < best_loss - MIN_DELTA
        if improved.any():
            for saved, current in zip(best_weights, nets.snapshot(), strict=True):
                saved[improved] = current[improved]
            best_loss[improved] = outputs[2][improved]
            best_epoch[improved] = ep
        # Stop once the best candidate so far has not improved for `patience` epochs: the others
        # are behind it, and one that is still improving slowly rarely overtakes it.
        if ep - best_epoch[np.argmin(best_loss)] >= cfg.patience:
            break

    chosen = int(np.argmin(best_loss))
    model = build_model(
        x_train.shape[1], n_classes, hidden=cfg.hidden, output=output_activation(cfg)
    )
    w1, b1, w2, b2 = best_weights
    model.set_weights([w1[chosen], b1[chosen, 0], w2[chosen], b2[chosen, 0]])
    chosen_history = {name: [float(v[chosen]) for v in values] for name, values in history.items()}
    return FitResult(
        model=model,
        history=chosen_history,
        best_epoch=int(best_epoch[chosen]),
        epochs_run=epochs_run,
        candidate=chosen,
        candidate_val_losses=[float(v) for v in best_loss],
        device=device,
    )


def network_from_model(model: keras.Model, mean: np.ndarray, scale: np.ndarray) -> Network:
    """The arrays of a trained Keras model, for the numpy forward pass."""
    hidden, output = model.get_layer("hidden"), model.get_layer("speaker")
    w1, b1 = (np.asarray(w, dtype=np.float64) for w in hidden.get_weights())
    w2, b2 = (np.asarray(w, dtype=np.float64) for w in output.get_weights())
    name = getattr(output.activation, "__name__", repr(output.activation))
    if name not in ("softmax", "sigmoid"):
        raise ParameterError(f"output activation {name!r} must be 'softmax' or 'sigmoid'")
    return Network(
        w1,
        b1,
        w2,
        b2,
        cast(OutputActivation, name),
        np.asarray(mean, np.float64),
        np.asarray(scale, np.float64),
    )
