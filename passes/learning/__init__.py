"""The online learning rules behind insert-eligibility-traces (docs/design.md §3).

``plan`` declares the traces, ``learn_step`` builds ``@learn_step`` and the signals every
rule uses (D, Df, δ, δ⁻, direct gradients), ``rule`` is the interface each rule
implements (and the exact traces of element-wise parameters, the same under every
rule), ``d_rtrl`` and ``es_d_rtrl`` are the two rules, ``layout`` the relation layouts.
"""

from __future__ import annotations


def rules() -> dict:
    """Algorithm name -> rule class."""
    from tracec.passes.learning.d_rtrl import DRtrl
    from tracec.passes.learning.es_d_rtrl import EsDRtrl

    return {cls.name: cls for cls in (DRtrl, EsDRtrl)}
