"""Retrievers for RAG frameworks over anything with `Index.search`'s signature (`Index`,
`ShardedIndex`, a remote client): `langchain` (latesearch[langchain]), `llamaindex`
(latesearch[llamaindex]) and `haystack` (latesearch[haystack]). Each module imports its
framework; this package imports none.
"""
