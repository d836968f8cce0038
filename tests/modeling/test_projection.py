"""PCA starting projections keep the backbone's token geometry."""

from __future__ import annotations

import pytest
import torch

from latesearch.errors import ConfigError
from latesearch.modeling.projection import pca_projection, token_moments, token_second_moment

TEXTS = ["late interaction query document", "a cat and a dog in the house", "protein cell gene"]


def test_second_moment_is_symmetric_psd(tiny_colbert):
    moment = token_second_moment(tiny_colbert, TEXTS, batch_size=2)
    hidden = tiny_colbert.backbone.config.hidden_size
    assert moment.shape == (hidden, hidden)
    torch.testing.assert_close(moment, moment.T)
    assert torch.linalg.eigvalsh(moment).min() > -1e-8


def test_full_rank_pca_preserves_dot_products():
    torch.manual_seed(0)
    x = torch.randn(500, 8, dtype=torch.float64) * torch.arange(1, 9)
    moment = x.T @ x / len(x)
    full, kept = pca_projection(moment, 8)
    assert kept == pytest.approx(1.0)
    y = x.float() @ full.T
    torch.testing.assert_close(y @ y.T, (x @ x.T).float(), rtol=1e-4, atol=1e-3)


def test_truncated_pca_keeps_the_dominant_directions():
    torch.manual_seed(0)
    x = torch.randn(2000, 6, dtype=torch.float64) * torch.tensor([10, 5, 1, 0.1, 0.1, 0.1])
    top2, kept = pca_projection(x.T @ x / len(x), 2)
    assert kept > 0.99
    assert top2.abs().argmax(1).tolist() == [0, 1]
    assert (top2.gather(1, top2.abs().argmax(1, keepdim=True)) > 0).all()  # fixed signs
    with pytest.raises(ConfigError):
        pca_projection(x.T @ x, 7)


def test_token_moments_agree_with_the_encoded_states(tiny_colbert):
    mean, moment = token_moments(tiny_colbert, TEXTS, batch_size=2)
    torch.testing.assert_close(moment, token_second_moment(tiny_colbert, TEXTS, batch_size=3))
    # E[h h^T] - E[h] E[h]^T is a covariance: positive semi-definite
    assert torch.linalg.eigvalsh(moment - torch.outer(mean, mean)).min() > -1e-8


def test_removed_direction_maps_to_zero_and_the_rest_is_kept():
    torch.manual_seed(0)
    shared = torch.tensor([6.0, 0, 0, 0, 0], dtype=torch.float64)
    x = torch.randn(3000, 5, dtype=torch.float64) * torch.tensor([0.1, 4, 2, 1, 0.5]) + shared
    moment = x.T @ x / len(x)
    plain, _ = pca_projection(moment, 2)
    assert plain[0].abs().argmax() == 0  # the shared direction dominates the uncentered PCA
    W, kept = pca_projection(moment, 2, remove=x.mean(0))
    assert (W.double() @ x.mean(0)).abs().max() < 1e-5
    assert W.abs().argmax(1).tolist() == [1, 2]
    assert 0 < kept < 1
    with pytest.raises(ConfigError):
        pca_projection(moment, 2, remove=torch.zeros(5))
