"""Automatic differentiation of straight-line StableHLO (docs/passes.md, differentiate).

- ``engine``: ``jvp``/``vjp`` over a one-block function, seeded at any values, with cuts;
  dead-code removal; the module's warnings.
- ``rules``: the derivative rule of each StableHLO op, one table keyed by op type.

New ops are built with ``tracec.passes.ir.builder.Builder``.
"""
