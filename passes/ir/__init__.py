"""The IR layer every pass builds on.

- ``builder``: the one builder (folding, CSE, locations), block cloning;
- ``attributes``: typed views of the StableHLO attributes passes read and build;
- ``module``: a tracec module's functions, roles, attribute values and diagnostics;
- ``indexing``: the bounds of gather and scatter index vectors (clamping, in-bounds masks).
"""
