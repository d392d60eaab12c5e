"""Sampling plans and the generation of single-op benchmark models from them.

``load_plan(name_or_path).expand()`` gives the op specs; ``generate(specs, out_dir)`` writes
their models with a manifest. ``adaptive_specs`` samples around the worst-predicted specs.
"""

from tflat.plans.generate import GenerateReport, generate, model_path, read_manifest
from tflat.plans.plan import (
    DEFAULT_MAX_SPECS,
    InvalidSpec,
    Plan,
    PlanSpecs,
    load_plan,
    model_specs,
    plan_from_dict,
    prior_table_specs,
    shipped_plans,
    summarize,
)
from tflat.plans.sampling import adaptive_specs, jitter, neighbours, random_specs

__all__ = [
    "DEFAULT_MAX_SPECS",
    "GenerateReport",
    "InvalidSpec",
    "Plan",
    "PlanSpecs",
    "adaptive_specs",
    "generate",
    "jitter",
    "load_plan",
    "model_path",
    "model_specs",
    "neighbours",
    "plan_from_dict",
    "prior_table_specs",
    "random_specs",
    "read_manifest",
    "shipped_plans",
    "summarize",
]
