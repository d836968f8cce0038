"""Several devices: one process per device, shards merged in document order."""

from __future__ import annotations

import numpy as np
import pytest

from latesearch.errors import ConfigError


def test_two_cpu_processes_match_one(build, corpus, small_config):
    single = build(corpus, "single")
    multi = build(corpus, "multi", config=small_config.replace(devices=["cpu", "cpu"]))
    assert multi.summary.devices == ["cpu", "cpu"]
    assert list(multi.doc_ids) == list(single.doc_ids)
    np.testing.assert_array_equal(multi.doclens, single.doclens)
    np.testing.assert_allclose(multi.token_range(0, multi.n_embeddings),
                               single.token_range(0, single.n_embeddings), atol=1e-5)  # fmt: skip
    assert multi.summary.truncated_docs == single.summary.truncated_docs


def test_unavailable_device_is_a_config_error(build, corpus, small_config):
    import torch

    if torch.cuda.is_available():
        pytest.skip("CUDA is present")
    with pytest.raises(ConfigError, match="cuda"):
        build(corpus, config=small_config.replace(devices=["cuda:0"]))
