"""The surrogate derivatives of the Heaviside spike, written once (docs/design.md section 2).

``tracec.spike(v, surrogate, alpha)`` is ``v > 0`` forward; backward it uses one of the
formulas below. Each formula is written against a small arithmetic ``m`` so the same
text serves both places that evaluate it:

- the JAX frontend (``jax.grad`` of the user's step, BPTT) evaluates it with ``jax.numpy``;
- the autodiff rules (tracec's own derivative of ``@step``) emit it as StableHLO ops with
  the IR builder.

``m`` provides ``const(value, like)``, ``add``, ``sub``, ``neg``, ``mul``, ``div``, ``abs``,
``exp`` and ``maximum``; the formulas use nothing else, so both evaluations do the
same operations in the same order.
"""

from __future__ import annotations

import math
from typing import Callable


def sigmoid(m, x, alpha):
    """α·σ(αx)·σ(−αx) (that is α·s(1−s), s = σ(αx)), computed as α·e/(1+e)² with
    e = exp(−α|x|): one exponential and one division, e ≤ 1 so nothing overflows, and no
    1−s to lose precision in f32."""
    e = m.exp(m.mul(m.const(-alpha, x), m.abs(x)))
    d = m.add(m.const(1.0, x), e)
    return m.div(m.mul(m.const(alpha, x), e), m.mul(d, d))


def fast_sigmoid(m, x, alpha):
    """1/(1+α|x|)²"""
    u = m.add(m.const(1.0, x), m.mul(m.const(alpha, x), m.abs(x)))
    return m.div(m.const(1.0, x), m.mul(u, u))


def triangle(m, x, alpha):
    """max(0, 1−|x|/α)/α"""
    inner = m.sub(m.const(1.0, x), m.div(m.abs(x), m.const(alpha, x)))
    return m.div(m.maximum(m.const(0.0, x), inner), m.const(alpha, x))


def arctan(m, x, alpha):
    """(α/2)/(1+(παx/2)²)"""
    u = m.mul(m.const(math.pi * alpha / 2.0, x), x)
    return m.div(m.const(alpha / 2.0, x), m.add(m.const(1.0, x), m.mul(u, u)))


def gaussian(m, x, alpha):
    """exp(−x²/2α²)/(√(2π)α)"""
    e = m.exp(m.div(m.neg(m.mul(x, x)), m.const(2.0 * alpha ** 2, x)))
    return m.div(e, m.const(math.sqrt(2.0 * math.pi) * alpha, x))


#: surrogate name -> formula(m, x, alpha), the derivative of the Heaviside at x.
SURROGATES: dict[str, Callable] = {
    "sigmoid": sigmoid,
    "fast-sigmoid": fast_sigmoid,
    "triangle": triangle,
    "arctan": arctan,
    "gaussian": gaussian,
}
DEFAULT_SURROGATE = "sigmoid"
DEFAULT_ALPHA = 4.0
#: the ``surrogate`` attribute of a spike that comes from the model's own
#: ``jax.custom_jvp`` or ``jax.custom_vjp``: its derivative is the composite's second result, not a formula
CUSTOM_SURROGATE = "custom"


def problem(surrogate: str, alpha: float) -> tuple[str, str | None] | None:
    """What is wrong with a (surrogate, alpha) choice, as (message, hint), or None."""
    if surrogate not in SURROGATES:
        return f"unknown surrogate '{surrogate}'", f"choose one of {', '.join(SURROGATES)}"
    if not (isinstance(alpha, (int, float)) and alpha > 0):
        return f"surrogate alpha must be a positive number, got {alpha!r}", None
    return None
