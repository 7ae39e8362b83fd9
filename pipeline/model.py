"""The Keras 60-6-N model and its training by backpropagation.

Several candidate networks (``TrainConfig.candidates``) are trained side by side in one batched
graph from different initial weights, each with its own early stopping that restores its best
weights; the candidate with the lowest validation loss becomes the Keras model. One training loop
per epoch runs inside a ``tf.function``: for a network this small, ``model.fit``'s per-epoch
overhead would cost more than the training itself.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import NamedTuple, cast

import numpy as np

from pipeline.config import TrainConfig
from pipeline.errors import ParameterError
from pipeline.extras import missing_extra
from pipeline.native_log import filtered_stderr

try:
    with filtered_stderr():  # TensorFlow's start-up lines, which no setting silences
        import keras
        import tensorflow as tf
except ModuleNotFoundError as exc:  # a default install: serving only
    raise missing_extra(exc, "training") from exc
from pipeline.network import Network, OutputActivation

__all__ = [
    "BestSoFar",
    "EpochCallback",
    "EpochStats",
    "FitResult",
    "build_model",
    "fit",
    "network_from_model",
    "resolve_device",
]

EpochCallback = Callable[[int, int], None]  # (epoch done, epoch it stops at unless it improves)
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


class EpochStats(NamedTuple):
    """One epoch's figures, each (K,): one value per candidate. The training ones are running
    means over the epoch's batches, as Keras reports them; the validation ones are exact."""

    loss: np.ndarray
    accuracy: np.ndarray
    val_loss: np.ndarray
    val_accuracy: np.ndarray


class BestSoFar:
    """Each candidate's lowest validation loss so far, the epoch it came at, its weights then."""

    def __init__(self, weights: list[np.ndarray]) -> None:
        k = len(weights[0])
        self.loss = np.full(k, np.inf)
        self.epoch = np.zeros(k, dtype=int)
        self.weights = weights  # batched like _Candidates.snapshot(): candidates first

    @property
    def leader(self) -> int:
        """The candidate with the lowest validation loss so far."""
        return int(np.argmin(self.loss))

    def update(
        self, epoch: int, val_loss: np.ndarray, snapshot: Callable[[], list[np.ndarray]]
    ) -> None:
        """Keep the weights (from ``snapshot()``) of the candidates whose loss improved."""
        improved = val_loss < self.loss - MIN_DELTA
        if not improved.any():
            return
        for saved, current in zip(self.weights, snapshot(), strict=True):
            saved[improved] = current[improved]
        self.loss[improved] = val_loss[improved]
        self.epoch[improved] = epoch

    def stalled(self, epoch: int, patience: int) -> bool:
        """The leader has not improved for ``patience`` epochs: the others are behind it, and
        one that is still improving slowly rarely overtakes it."""
        return epoch - self.epoch[self.leader] >= patience


@dataclass(frozen=True)
class _Tensors:
    """The training and validation rows as tensors: inputs, one-hot targets, sample weights."""

    x: tf.Tensor
    targets: tf.Tensor
    weights: tf.Tensor
    x_val: tf.Tensor
    val_targets: tf.Tensor
    val_labels: tf.Tensor

    @classmethod
    def of(
        cls, x_train: np.ndarray, y_train: np.ndarray, x_val: np.ndarray, y_val: np.ndarray,
        class_weights: np.ndarray,
    ) -> _Tensors:  # fmt: skip
        eye = np.eye(len(class_weights), dtype=np.float32)
        return cls(
            tf.constant(x_train, tf.float32), tf.constant(eye[y_train]),
            tf.constant(class_weights[y_train].astype(np.float32)),
            tf.constant(x_val, tf.float32), tf.constant(eye[y_val]), tf.constant(y_val, tf.int64),
        )  # fmt: skip


def fit(
    x_train: np.ndarray,
    y_train: np.ndarray,
    x_val: np.ndarray,
    y_val: np.ndarray,
    n_classes: int,
    cfg: TrainConfig,
    on_epoch: EpochCallback | None = None,
) -> FitResult:
    """Train on standardised features ``x_*`` (B, D) with integer labels ``y_*`` (B,).

    ``on_epoch(epoch, horizon)``, when given, is called after each epoch (counted from 1) with
    the epoch training stops at unless the leading candidate improves again."""
    keras.utils.set_random_seed(cfg.seed)
    rng = np.random.default_rng(cfg.seed)
    device = resolve_device(cfg.device)
    weights = _class_weights(y_train, n_classes) if cfg.class_weights else np.ones(n_classes)
    with tf.device(device):
        data = _Tensors.of(x_train, y_train, x_val, y_val, weights)
        hidden = cfg.hidden_for(n_classes)
        nets = _Candidates(rng, cfg.candidates, x_train.shape[1], hidden, n_classes)
        epoch = _epoch_function(nets, keras.optimizers.Adam(cfg.learning_rate), data, cfg)
        history, best = _run_epochs(epoch, nets, len(x_train), cfg, rng, on_epoch)
        return _fit_result(history, best, x_train.shape[1], n_classes, cfg, device)


def _class_weights(y: np.ndarray, n_classes: int) -> np.ndarray:
    counts = np.bincount(y, minlength=n_classes).astype(np.float64)
    return len(y) / (n_classes * np.maximum(counts, 1))


def _evaluate(
    nets: _Candidates, x: tf.Tensor, targets: tf.Tensor, labels: tf.Tensor, loss: str
) -> tuple[tf.Tensor, tf.Tensor]:
    """Each candidate's (K,) mean loss and accuracy on the rows ``x``."""
    logits = nets.logits(x)
    mean_loss = tf.reduce_mean(_per_sample_loss(logits, targets, loss), axis=1)
    hits = tf.cast(tf.argmax(logits, axis=-1) == labels[None, :], tf.float32)
    return mean_loss, tf.reduce_mean(hits, axis=1)


def _epoch_function(
    nets: _Candidates, optimizer: keras.optimizers.Optimizer, data: _Tensors, cfg: TrainConfig
) -> Callable[[tf.Tensor], tuple[tf.Tensor, ...]]:
    """One epoch of mini-batch updates of every candidate, in one ``tf.function``: given the
    order of the training rows, it returns the epoch's :class:`EpochStats` as tensors."""
    k, n = cfg.candidates, int(data.x.shape[0])
    batch = min(cfg.batch_size, n)
    steps = max(1, n // batch)

    @tf.function
    def epoch(order: tf.Tensor) -> tuple[tf.Tensor, ...]:
        # Training loss and accuracy are running means over the epoch's batches, as Keras
        # reports them: a separate pass over the training rows cost as much as the updates.
        loss_sum, hit_sum = tf.zeros([k]), tf.zeros([k])
        for i in tf.range(steps):
            idx = order[i * batch : (i + 1) * batch]
            xb, tb = tf.gather(data.x, idx), tf.gather(data.targets, idx)
            wb = tf.gather(data.weights, idx)
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
        validation = _evaluate(nets, data.x_val, data.val_targets, data.val_labels, cfg.loss)
        return (loss_sum / steps, hit_sum / steps, *validation)

    return epoch


def _run_epochs(
    epoch: Callable[[tf.Tensor], tuple[tf.Tensor, ...]],
    nets: _Candidates,
    n: int,
    cfg: TrainConfig,
    rng: np.random.Generator,
    on_epoch: EpochCallback | None = None,
) -> tuple[list[EpochStats], BestSoFar]:
    """Run epochs until ``cfg.max_epochs`` or until the leading candidate stalls."""
    history: list[EpochStats] = []
    best = BestSoFar(nets.snapshot())
    for ep in range(cfg.max_epochs):
        stats = EpochStats(*(t.numpy() for t in epoch(tf.constant(rng.permutation(n)))))
        history.append(stats)
        best.update(ep, stats.val_loss, nets.snapshot)
        if on_epoch is not None:
            horizon = int(best.epoch[best.leader]) + cfg.patience + 1
            on_epoch(ep + 1, min(horizon, cfg.max_epochs))
        if best.stalled(ep, cfg.patience):
            break
    return history, best


def _fit_result(
    history: list[EpochStats], best: BestSoFar, n_inputs: int, n_classes: int, cfg: TrainConfig,
    device: str,
) -> FitResult:  # fmt: skip
    """The leading candidate at its best epoch, as a Keras model, with its own history."""
    chosen = best.leader
    model = build_model(
        n_inputs, n_classes, hidden=cfg.hidden_for(n_classes), output=output_activation(cfg)
    )
    w1, b1, w2, b2 = best.weights
    model.set_weights([w1[chosen], b1[chosen, 0], w2[chosen], b2[chosen, 0]])
    own = {name: [float(getattr(s, name)[chosen]) for s in history] for name in EpochStats._fields}
    return FitResult(
        model=model,
        history=own,
        best_epoch=int(best.epoch[chosen]),
        epochs_run=len(history),
        candidate=chosen,
        candidate_val_losses=[float(v) for v in best.loss],
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
