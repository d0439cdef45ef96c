"""tracec's passes: one xDSL ``ModulePass`` per file, each with a kebab-case ``name``.

``PASSES`` is the one registry that the driver, ``-p`` pipelines, ``tracec-opt`` and
``--list-passes`` all use. Passes import xDSL and tracec's dialects, never jax.
"""

from __future__ import annotations

from typing import Callable

from xdsl.passes import ModulePass


def _strip_sharding():
    from tracec.passes.strip_sharding import StripShardingPass
    return StripShardingPass


def _inline_private_functions():
    from tracec.passes.inline_private_functions import InlinePrivateFunctionsPass
    return InlinePrivateFunctionsPass


def _flatten_control_flow():
    from tracec.passes.flatten_control_flow import FlattenControlFlowPass
    return FlattenControlFlowPass


def _insert_eligibility_traces():
    from tracec.passes.insert_eligibility_traces import InsertEligibilityTracesPass
    return InsertEligibilityTracesPass


def _insert_optimizer():
    from tracec.passes.insert_optimizer import InsertOptimizerPass
    return InsertOptimizerPass


def _check_backend_ops():
    from tracec.passes.check_backend_ops import CheckBackendOpsPass
    return CheckBackendOpsPass


def _make_entry_points():
    from tracec.passes.make_entry_points import MakeEntryPointsPass
    return MakeEntryPointsPass


def _lower_scan_to_stablehlo():
    from tracec.passes.lower_scan_to_stablehlo import LowerScanToStablehloPass
    return LowerScanToStablehloPass


def _lower_scan_to_iree():
    from tracec.passes.lower_scan_to_iree import LowerScanToIreePass
    return LowerScanToIreePass


def _lower_traces_to_stablehlo():
    from tracec.passes.lower_traces_to_stablehlo import LowerTracesToStablehloPass
    return LowerTracesToStablehloPass


def _window_param_traces():
    from tracec.passes.window_param_traces import WindowParamTracesPass
    return WindowParamTracesPass


def _leading_sums_to_dot():
    from tracec.passes.leading_sums_to_dot import LeadingSumsToDotPass
    return LeadingSumsToDotPass


def _algebraic_simplify():
    from tracec.passes.algebraic_simplify import AlgebraicSimplifyPass
    return AlgebraicSimplifyPass


def _guard_scatter_indices():
    from tracec.passes.guard_scatter_indices import GuardScatterIndicesPass
    return GuardScatterIndicesPass


def _event_driven_relations():
    from tracec.passes.event_driven_relations import EventDrivenRelationsPass
    return EventDrivenRelationsPass


def _fusion_barriers_to_iree():
    from tracec.passes.fusion_barriers_to_iree import FusionBarriersToIreePass
    return FusionBarriersToIreePass


def _strip_tracec_attributes():
    from tracec.passes.strip_tracec_attributes import StripTracecAttributesPass
    return StripTracecAttributesPass


def _extract_step():
    from tracec.passes.extract_step import ExtractStepPass
    return ExtractStepPass


def _identify_recurrent_state():
    from tracec.passes.identify_recurrent_state import IdentifyRecurrentStatePass
    return IdentifyRecurrentStatePass


def _find_hidden_groups():
    from tracec.passes.find_hidden_groups import FindHiddenGroupsPass
    return FindHiddenGroupsPass


def _find_param_relations():
    from tracec.passes.find_param_relations import FindParamRelationsPass
    return FindParamRelationsPass


def _differentiate():
    from tracec.passes.differentiate import DifferentiatePass
    return DifferentiatePass


#: name -> loader of the pass class (lazy, so listing passes stays cheap).
PASSES: dict[str, Callable[[], type[ModulePass]]] = {
    "strip-sharding": _strip_sharding,
    "inline-private-functions": _inline_private_functions,
    "extract-step": _extract_step,
    "flatten-control-flow": _flatten_control_flow,
    "identify-recurrent-state": _identify_recurrent_state,
    "find-hidden-groups": _find_hidden_groups,
    "find-param-relations": _find_param_relations,
    "insert-eligibility-traces": _insert_eligibility_traces,
    "insert-optimizer": _insert_optimizer,
    "check-backend-ops": _check_backend_ops,
    "make-entry-points": _make_entry_points,
    "lower-scan-to-stablehlo": _lower_scan_to_stablehlo,
    "lower-scan-to-iree": _lower_scan_to_iree,
    "window-param-traces": _window_param_traces,
    "lower-traces-to-stablehlo": _lower_traces_to_stablehlo,
    "leading-sums-to-dot": _leading_sums_to_dot,
    "algebraic-simplify": _algebraic_simplify,
    "guard-scatter-indices": _guard_scatter_indices,
    "event-driven-relations": _event_driven_relations,
    "fusion-barriers-to-iree": _fusion_barriers_to_iree,
    "strip-tracec-attributes": _strip_tracec_attributes,
    "differentiate": _differentiate,
}


def pass_summary(name: str) -> str:
    """First line of a pass's module docstring (for ``--list-passes``)."""
    import sys

    cls = PASSES[name]()
    doc = (sys.modules[cls.__module__].__doc__ or "").strip()
    return doc.splitlines()[0] if doc else ""
