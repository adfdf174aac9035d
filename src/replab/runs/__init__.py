"""Layer 5, runs and reports: the timeline every sampler and fault appends to, scenarios (built-in and custom),
and the reports rendered from a run.
"""
