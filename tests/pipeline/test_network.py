"""Tests of the numpy forward pass with hand-set weights."""

from __future__ import annotations

import numpy as np
import pytest

from pipeline.network import sigmoid, softmax
from tests.helpers import switch_network


def test_sigmoid_does_not_overflow() -> None:
    with np.errstate(over="raise"):
        values = sigmoid(np.array([-1000.0, 0.0, 1000.0]))

    np.testing.assert_array_equal(values, [0.0, 0.5, 1.0])


def test_softmax_rows_sum_to_one_and_ignore_a_shift() -> None:
    logits = np.array([[1.0, 2.0, 3.0], [1000.0, 1000.0, 1000.0]])

    scores = softmax(logits)

    np.testing.assert_allclose(scores.sum(axis=1), 1.0)
    np.testing.assert_allclose(scores[1], 1 / 3)
    np.testing.assert_allclose(scores[0], softmax(logits[:1] - 50.0)[0])


def test_forward_standardises_then_applies_both_layers() -> None:
    net = switch_network()

    hidden, scores = net.forward(np.array([[2.0, 7.0], [0.0, -3.0]]))

    np.testing.assert_allclose(hidden, [[1.0, 0.0], [0.0, 1.0]], atol=1e-8)
    assert scores.argmax(axis=1).tolist() == [0, 1]
    np.testing.assert_allclose(scores.sum(axis=1), 1.0)
    assert scores[0, 0] == pytest.approx(1.0, abs=1e-8)


def test_sigmoid_outputs_are_independent_scores() -> None:
    net = switch_network("sigmoid")

    hidden, scores = net.forward(np.array([[2.0, 0.0]]))

    np.testing.assert_allclose(hidden, sigmoid(np.array([[20.0, -20.0]])))
    np.testing.assert_allclose(scores, sigmoid(hidden @ net.output_kernel))


def test_sizes_are_inputs_hidden_outputs() -> None:
    assert switch_network().sizes == (2, 2, 2)
