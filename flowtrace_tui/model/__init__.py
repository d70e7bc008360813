"""The explorer's data model: numpy arrays built from `.ftr` chunks. No Textual imports here.

- `loader.TraceData`: growable per-call columns filled chunk by chunk (append-only, for live files);
- `index.build_index`: preorder index (positions, subtree ends, depth, self time, groups);
- `grow.grow_index`: the same index for a live session, grown with the new calls only;
- `rows.TreeRows`: which nodes are visible; expand is a splice, collapse a slice;
- `search`: function-name and argument/result-text search;
- `filters.Filters`: hide short calls / modules.
"""

from .index import TreeIndex, build_index
from .loader import TraceData
from .rows import TreeRows

__all__ = ["TraceData", "TreeIndex", "TreeRows", "build_index"]
