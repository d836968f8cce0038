"""Retrievers for RAG frameworks over anything with `Index.search`'s signature (`Index`,
`ShardedIndex`, a remote client): `langchain` (latesearch[langchain]) and `llamaindex`
(latesearch[llamaindex]). Each module imports its framework; this package imports none.
"""
