"""The search engine of compressed indexes, in the spirit of PLAID (Santhanam et al., CIKM
2022), one module per stage:

1. `centroid_scores`: query-token x centroid scores (one matrix product, or from
   `COARSE_FROM` centroids on a coarse level over the centroids: probed groups first, other rows
   when a later stage asks); `candidates`: the documents of each query token's top
   `ncells` centroids (the inverted file);
2. `interaction`: centroid interaction, an approximate MaxSim from centroid scores alone:
   first with centroids scoring below `centroid_score_threshold` pruned, keeping the best
   `ndocs`, then with every token's centroid, keeping the best `ndocs / 4`;
3. `residual_scoring`: exact MaxSim of the survivors from their decompressed residuals (or
   the uncompressed vectors where the index keeps them), top-k; or `lut_scoring`, the same
   scores from the codes and packed residuals through per-query lookup tables, without
   decompressing (residuals, cosine, CPU; `EngineParams.lookup_tables`).

`pipeline.Engine` runs them in turn; `params.EngineParams` holds the knobs, with defaults
that follow k (`for_k`) or k, the index and the query (`auto`, what searches use).
"""

from latesearch.search.engine.params import EngineParams
from latesearch.search.engine.pipeline import Engine

__all__ = ["Engine", "EngineParams"]
