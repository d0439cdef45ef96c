"""Several input (or target) streams given as a pytree, carried as one packed tensor.

A model's ``input`` or ``target`` may be a pytree (dict, tuple, list) of
``jax.ShapeDtypeStruct`` with the same leading batch dimension: several streams, e.g.
``{"spikes": (B, 40) float32, "tokens": (B,) int32}``. The compiled entry points take
one float32 tensor ``[B, Σ size]`` (``[T, B, Σ size]`` for sequences) holding every
leaf flattened after the batch axis, side by side in pytree order; the step and the
loss receive the pytree back (slices, reshapes, and a conversion to each leaf's dtype).
Integer and boolean leaves travel as exact float32 values (|v| < 2^24: the runtime
checks). The manifest's ``source`` lists the leaves (``input_leaves``,
``target_leaves``) so the runtime packs what the user gives (docs/abi.md).
"""

from __future__ import annotations

from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np

#: leaf dtypes float32 carries exactly (integers up to 2^24 in magnitude)
PACKABLE = {"float32", "int32", "int16", "int8", "uint8", "uint16", "bool"}


def is_spec(x) -> bool:
    return hasattr(x, "shape") and hasattr(x, "dtype")


@dataclass(frozen=True)
class Packing:
    """How a pytree of per-step specs maps onto one packed ``[B, size]`` tensor."""

    tree: object            # the pytree structure
    names: list             # leaf names (pytree paths joined with "/")
    shapes: list            # leaf shapes, batch first
    dtypes: list            # numpy dtype names
    offsets: list           # start column of each leaf in the packed tensor

    @property
    def size(self) -> int:
        return self.offsets[-1] + int(np.prod(self.shapes[-1][1:], dtype=np.int64))

    @property
    def spec(self) -> jax.ShapeDtypeStruct:
        return jax.ShapeDtypeStruct((self.shapes[0][0], self.size), jnp.float32)

    def unpack(self, packed):
        """The pytree of leaves from a packed ``[..., B, size]`` array (jax)."""
        lead = packed.shape[:-1]
        leaves = []
        for shape, dtype, off in zip(self.shapes, self.dtypes, self.offsets):
            n = int(np.prod(shape[1:], dtype=np.int64))
            part = packed[..., off:off + n].reshape(lead + tuple(shape[1:]))
            leaves.append(part if dtype == "float32" else part.astype(dtype))
        return jax.tree_util.tree_unflatten(self.tree, leaves)

    def as_json(self) -> list[dict]:
        return [{"name": n, "shape": list(s), "dtype": d, "offset": o}
                for n, s, d, o in zip(self.names, self.shapes, self.dtypes, self.offsets)]


def packing(tree) -> Packing | None:
    """None for a single spec (passed as it is); a Packing for a pytree of specs."""
    if is_spec(tree):
        return None
    from tracec.frontends.lower_jax import leaf_names

    leaves, structure = jax.tree_util.tree_flatten(tree, is_leaf=is_spec)
    names = leaf_names(jax.tree_util.tree_unflatten(structure, [0] * len(leaves)))
    shapes = [tuple(int(d) for d in leaf.shape) for leaf in leaves]
    offsets, off = [], 0
    for s in shapes:
        offsets.append(off)
        off += int(np.prod(s[1:], dtype=np.int64))
    return Packing(structure, names, shapes, [np.dtype(leaf.dtype).name for leaf in leaves],
                   offsets)
