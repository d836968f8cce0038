"""Sharded indexes: N ordinary indexes behind one object, searched in this process or
through Ray actors (`ShardedIndex`)."""

from latesearch.sharding.sharded_index import ShardedIndex

__all__ = ["ShardedIndex"]
