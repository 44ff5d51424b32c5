"""Classifier model: openings, blocks, classifier, losses; seeded determinism; a short fit."""

import math

import torch

import stablenet as sn


def test_duplicate_opening_is_seed_004s_width_8():
    opening = sn.DuplicateFeatures(2, 4)
    x = torch.tensor([[1.0, 2.0]])
    assert opening(x).tolist() == [[1.0, 2.0] * 4]
    assert list(opening.parameters()) == []


def test_classifier_shapes_connectors_and_two_stream_blocks():
    blocks = [sn.ODEBlock(sn.Hamiltonian(8, 4, nt=4), T=2.0, steps=8, method="verlet"),
              sn.ODEBlock(sn.Antisymmetric(6, nt=2), T=1.0, steps=4, method="rk4")]
    model = sn.ODEClassifier(2, 5, blocks, opening="duplicate")
    x = torch.randn(7, 2)
    assert model(x).shape == (7, 5)
    states = model.features(x, return_states=True)
    assert [s.shape for s in states] == [(9, 7, 8), (5, 7, 6)]
    assert isinstance(model.connectors[0], torch.nn.Linear)


def test_losses_match_their_definitions():
    scores = torch.tensor([[2.0, 0.0, -1.0], [0.5, 0.5, 0.0]])
    labels = torch.tensor([0, 2])
    ce = -0.5 * (torch.log_softmax(scores, 1)[0, 0] + torch.log_softmax(scores, 1)[1, 2])
    assert math.isclose(float(sn.softmax_cross_entropy(scores, labels)), float(ce), rel_tol=1e-6)
    # ½‖s − e_y‖² per example: ½(1 + 0 + 1) and ½(0.25 + 0.25 + 1)
    assert math.isclose(float(sn.least_squares(scores, labels)), 0.5 * (1.0 + 0.75), rel_tol=1e-6)


def build_and_fit(seed):
    torch.manual_seed(seed)
    x = torch.randn(64, 2)
    labels = (x[:, 0] * x[:, 1] > 0).long()  # XOR-like quadrants: needs the nonlinear dynamics
    model = sn.ODEClassifier(2, 2, sn.ODEBlock(sn.Antisymmetric(4, nt=4), T=2.0, steps=8, method="rk4"),
                             opening="duplicate")
    opt = torch.optim.Adam(model.parameters(), lr=0.05)
    losses = []
    for _ in range(60):
        opt.zero_grad()
        loss = sn.softmax_cross_entropy(model(x), labels)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    return losses


def test_training_reduces_the_loss_and_is_deterministic():
    first, second = build_and_fit(1), build_and_fit(1)
    assert first == second
    assert first[-1] < 0.6 * first[0], (first[0], first[-1])


def test_model_prolongation_keeps_outputs():
    model = sn.ODEClassifier(3, 2, sn.ODEBlock(sn.Parabolic(4, nt=2), T=1.0, steps=4, method="euler",
                                               controls="linear")).double()
    x = torch.randn(5, 3, dtype=torch.float64)
    before = model(x)
    model.prolongate()
    assert model.blocks[0].dynamics.nt == 4
    assert torch.allclose(model(x), before, atol=1e-14)
