"""latesearch: ColBERT late-interaction retrieval."""
