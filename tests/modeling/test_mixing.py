"""Weight-space mixtures: WiSE-FT interpolation and model soups."""

from __future__ import annotations

import pytest
import torch

from latesearch import ColBERT
from latesearch.errors import ConfigError
from latesearch.modeling.mixing import interpolate, mix_models
from tests.conftest import write_tiny_bert

QUERIES = ["late interaction query", "protein cell gene"]


def _load(folder, **overrides):
    settings = {"dim": 16, "query_maxlen": 12, "doc_maxlen": 24, **overrides}
    return ColBERT.from_pretrained(folder, device="cpu", **settings)


def _perturbed(model: ColBERT, seed: int) -> ColBERT:
    """A copy with every float weight moved, standing in for a fine-tuned model."""
    other = mix_models([model])
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for param in other.parameters():
            param.add_(0.05 * torch.randn(param.shape, generator=generator))
    return other


@pytest.fixture()
def pair(tiny_bert_dir):
    start = _load(tiny_bert_dir)
    return start, _perturbed(start, 1)


def test_interpolation_endpoints_are_the_ingredients(pair):
    start, tuned = pair
    for alpha, expected in ((0.0, start), (1.0, tuned)):
        mixed = interpolate(start, tuned, alpha)
        torch.testing.assert_close(mixed.encode_queries(QUERIES), expected.encode_queries(QUERIES))


def test_interpolation_is_linear_in_every_weight(pair):
    start, tuned = pair
    mixed = interpolate(start, tuned, 0.25).state_dict()
    a, b = start.state_dict(), tuned.state_dict()
    for name, tensor in mixed.items():
        if tensor.is_floating_point():
            torch.testing.assert_close(tensor, 0.75 * a[name] + 0.25 * b[name])
        else:
            assert torch.equal(tensor, a[name])
    assert not torch.equal(mixed["head.linear.weight"], a["head.linear.weight"])


def test_soup_is_the_uniform_average_and_leaves_ingredients_alone(pair):
    start, tuned = pair
    third = _perturbed(start, 2)
    before = start.linear.weight.clone()
    soup = mix_models([start, tuned, third])
    expected = (start.linear.weight + tuned.linear.weight + third.linear.weight) / 3
    torch.testing.assert_close(soup.linear.weight, expected)
    torch.testing.assert_close(start.linear.weight, before)
    assert soup.config == start.config


def test_usage_settings_may_differ_and_come_from_the_first(tiny_bert_dir, pair):
    start, _ = pair
    longer = _load(tiny_bert_dir, doc_maxlen=40)
    assert mix_models([longer, start]).config.doc_maxlen == 40


def test_bad_weights_are_rejected(pair):
    start, tuned = pair
    with pytest.raises(ConfigError, match="sum to 1"):
        mix_models([start, tuned], [0.5, 0.6])
    with pytest.raises(ConfigError, match="2 models but 1 weights"):
        mix_models([start, tuned], [1.0])
    with pytest.raises(ConfigError, match="at least one"):
        mix_models([])
    with pytest.raises(ConfigError, match="finite"):
        mix_models([start, tuned], [float("nan"), 1.0])


def test_incompatible_models_are_rejected(tiny_bert_dir, pair):
    start, _ = pair
    with pytest.raises(ConfigError, match=r"different settings: markers \(True vs False\)"):
        mix_models([start, _load(tiny_bert_dir, markers=False)])
    with pytest.raises(ConfigError, match="dim"):
        mix_models([start, ColBERT.from_pretrained(tiny_bert_dir, device="cpu", dim=8)])


def test_different_architectures_are_rejected(tmp_path, pair):
    start, _ = pair
    wider = _load(write_tiny_bert(tmp_path / "wider", hidden=48))
    with pytest.raises(ConfigError, match="different architectures"):
        mix_models([start, wider])
