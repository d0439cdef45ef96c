"""The recurrence analyses' libraries (docs/passes.md: identify-recurrent-state,
find-hidden-groups, find-param-relations).

- ``dataflow``: op classes and the value graph of ``@step`` (``StepGraph``), neuron
  labels, derived states;
- ``relations``: where each parameter meets the data flow into hidden groups.
"""
