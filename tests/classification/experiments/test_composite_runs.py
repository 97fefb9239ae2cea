"""A composite run (the demo's, the downstream set's) ignores the known harmless upstream warnings while it goes on and
only then: the caller's warning filters after the run are those of before, also when a run goes through the
downstream set's scheduler in this process (one job)."""
import warnings

from classification.engine.launch import UPSTREAM_WARNINGS
from classification.experiments.composite_runs import composite_run
from classification.experiments.reproduction import downstream
from classification.experiments.stages import Stage

MESSAGE, MODULE = next((m, mod) for m, mod in UPSTREAM_WARNINGS if mod == "mmseg.models.builder")


def warn(module: str) -> None:
    warnings.warn_explicit(f"{MESSAGE} (test)", UserWarning, f"{module}.py", 1, module=module)


def warn_from_upstream_and_here() -> None:
    warn(MODULE)  # ignored within a composite run
    warn("classification.models.mix_classifier")  # the same text from another module shows


def test_composite_run_ignores_upstream_warnings_for_the_run_only():
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        before = list(warnings.filters)
        with composite_run():
            warn_from_upstream_and_here()
        after = list(warnings.filters)
        warn(MODULE)  # after the run it shows again
    assert [w.filename for w in seen] == ["classification.models.mix_classifier.py", "mmseg.models.builder.py"]
    assert after == before


def test_downstream_run_plan_in_this_process_scopes_the_filters():
    plan = downstream.Plan([Stage("warns", warn_from_upstream_and_here)], 0, 0, 1)
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        before = list(warnings.filters)
        downstream.run_plan(plan, jobs=1)
        after = list(warnings.filters)
        warn(MODULE)
    assert [w.filename for w in seen] == ["classification.models.mix_classifier.py", "mmseg.models.builder.py"]
    assert after == before
