"""The compressed format (ColBERTv2's residual compression, PLAID's inverted file): the
`centroids` (k-means and assignment), the residual `codec`, the `ivf` inverted file, the
`coding` of token blocks into codes and residuals files, and the `arrays` helpers its files
are read and written with. Indexing builds with it; search reads with it."""
