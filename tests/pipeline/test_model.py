"""Tests of the Keras model: its shape, the numpy copy of it, seeded training and devices."""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf

from pipeline.config import TrainConfig
from pipeline.errors import ParameterError
from pipeline.model import (
    BestSoFar,
    FitResult,
    build_model,
    fit,
    network_from_model,
    resolve_device,
)

HAS_GPU = bool(tf.config.list_physical_devices("GPU"))
EPOCHS = 150  # per fit in the module's fixture; no early stop


def _random_weights(model: keras.Model, seed: int) -> None:
    rng = np.random.default_rng(seed)
    model.set_weights([rng.normal(0.0, 1.0, w.shape).astype(np.float32) for w in model.weights])


def _blobs(seed: int, n_per_class: int = 20) -> tuple[np.ndarray, np.ndarray]:
    """Two well separated Gaussian blobs in 60 dimensions, already standardised-looking."""
    rng = np.random.default_rng(seed)
    x = rng.normal(0.0, 1.0, (2 * n_per_class, 60)).astype(np.float32)
    y = np.repeat([0, 1], n_per_class)
    x[y == 1, :10] += 3.0
    return x, y


def test_build_model_is_60_6_n() -> None:
    model = build_model(60, 4)

    assert model.input_shape == (None, 60)
    assert model.output_shape == (None, 4)
    assert [layer.name for layer in model.layers] == ["hidden", "speaker"]
    assert [tuple(w.shape) for w in model.get_weights()] == [(60, 6), (6,), (6, 4), (4,)]
    assert model.count_params() == 60 * 6 + 6 + 6 * 4 + 4
    assert model.name == "voiceid_60_6_4"


@pytest.mark.parametrize("output", ["softmax", "sigmoid"])
def test_numpy_forward_pass_matches_keras(output: str) -> None:
    model = build_model(60, 3, hidden=6, output=output)  # type: ignore[arg-type]
    _random_weights(model, seed=1)
    rng = np.random.default_rng(2)
    mean, scale = rng.normal(-40.0, 10.0, 60), rng.uniform(2.0, 8.0, 60)
    features = rng.normal(-40.0, 15.0, (32, 60))

    network = network_from_model(model, mean, scale)
    _, scores = network.forward(features)

    expected = model(((features - mean) / scale).astype(np.float32)).numpy()
    assert network.output_activation == output
    assert network.sizes == (60, 6, 3)
    np.testing.assert_allclose(scores, expected, atol=1e-5)


def test_network_from_model_refuses_other_output_activations() -> None:
    model = keras.Sequential(
        [
            keras.Input((60,)),
            keras.layers.Dense(6, activation="sigmoid", name="hidden"),
            keras.layers.Dense(2, activation="relu", name="speaker"),
        ]
    )

    with pytest.raises(ParameterError) as error:
        network_from_model(model, np.zeros(60), np.ones(60))

    assert str(error.value) == "output activation 'relu' must be 'softmax' or 'sigmoid'"


@pytest.mark.parametrize(
    ("speakers", "hidden", "width"), [(2, None, 6), (16, None, 24), (16, 3, 3)]
)
def test_fit_builds_the_width_for_the_speaker_count_unless_pinned(
    speakers: int, hidden: int | None, width: int
) -> None:
    x, y = _blobs(0)
    x_val, y_val = _blobs(1, n_per_class=5)
    cfg = TrainConfig(candidates=1, max_epochs=1, hidden=hidden, device="cpu")

    model = fit(x, y, x_val, y_val, speakers, cfg).model

    assert [tuple(w.shape) for w in model.get_weights()] == [
        (60, width), (width,), (width, speakers), (speakers,)
    ]  # fmt: skip


@pytest.fixture(scope="module")
def fits() -> dict[str, FitResult]:
    """Two runs with seed 3 and one with seed 4, on the same data (3 fits: ~1 s each)."""
    x, y = _blobs(0)
    x_val, y_val = _blobs(1, n_per_class=5)

    def run(seed: int) -> FitResult:
        cfg = TrainConfig(candidates=2, max_epochs=EPOCHS, patience=EPOCHS, seed=seed, device="cpu")
        return fit(x, y, x_val, y_val, 2, cfg)

    return {"seed 3": run(3), "seed 3 again": run(3), "seed 4": run(4)}


@pytest.mark.slow  # three fits of 150 epochs
def test_fit_with_the_same_seed_gives_identical_weights(fits: dict[str, FitResult]) -> None:
    first, second = fits["seed 3"], fits["seed 3 again"]

    for a, b in zip(first.model.get_weights(), second.model.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)
    assert first.history == second.history
    assert (first.best_epoch, first.candidate) == (second.best_epoch, second.candidate)


@pytest.mark.slow  # three fits of 150 epochs
def test_fit_with_another_seed_gives_other_weights(fits: dict[str, FitResult]) -> None:
    first, other = fits["seed 3"], fits["seed 4"]

    assert not np.array_equal(first.model.get_weights()[0], other.model.get_weights()[0])


@pytest.mark.slow  # three fits of 150 epochs
def test_fit_keeps_the_best_candidate_at_its_best_epoch(fits: dict[str, FitResult]) -> None:
    result = fits["seed 3"]

    assert result.device == "/CPU:0"
    assert result.epochs_run == EPOCHS  # patience = max_epochs: no early stop
    assert sorted(result.history) == ["accuracy", "loss", "val_accuracy", "val_loss"]
    assert all(len(v) == EPOCHS for v in result.history.values())
    assert len(result.candidate_val_losses) == 2
    assert result.candidate == int(np.argmin(result.candidate_val_losses))
    best_val_loss = result.history["val_loss"][result.best_epoch]
    assert best_val_loss == pytest.approx(result.candidate_val_losses[result.candidate])
    assert best_val_loss == pytest.approx(min(result.history["val_loss"]), abs=1e-4)
    assert result.history["accuracy"][-1] == 1.0
    assert result.model.layers[-1].activation.__name__ == "softmax"


@pytest.mark.skipif(HAS_GPU, reason="TensorFlow sees a GPU here")
def test_asking_for_a_gpu_without_one_is_an_error() -> None:
    with pytest.raises(ParameterError) as error:
        resolve_device("gpu")

    assert str(error.value) == "device='gpu' was asked for, but TensorFlow sees no GPU"


def test_cpu_is_always_available_and_auto_falls_back_to_it() -> None:
    assert resolve_device("cpu") == "/CPU:0"
    assert resolve_device("auto") == ("/GPU:0" if HAS_GPU else "/CPU:0")


def test_best_so_far_keeps_each_candidates_best_weights_and_epoch() -> None:
    weights = [np.zeros((2, 3)), np.zeros((2, 1))]  # two candidates
    best = BestSoFar(weights)
    snapshots = iter([[np.full((2, 3), 1.0), np.full((2, 1), 1.0)],
                      [np.full((2, 3), 2.0), np.full((2, 1), 2.0)]])  # fmt: skip

    best.update(0, np.array([0.5, 0.7]), lambda: next(snapshots))  # both improve on inf
    best.update(1, np.array([0.49995, 0.6]), lambda: next(snapshots))  # only the second by 1e-4
    best.update(2, np.array([0.9, 0.9]), lambda: pytest.fail("no improvement, no snapshot"))

    np.testing.assert_array_equal(best.loss, [0.5, 0.6])
    np.testing.assert_array_equal(best.epoch, [0, 1])
    np.testing.assert_array_equal(best.weights[0], [[1.0] * 3, [2.0] * 3])
    np.testing.assert_array_equal(best.weights[1], [[1.0], [2.0]])
    assert best.leader == 0
    assert not best.stalled(2, patience=3)
    assert best.stalled(3, patience=3)  # the leader's best was epoch 0
