"""The known harmless upstream warnings (classification.engine.launch.UPSTREAM_WARNINGS) are ignored while a tool's run
goes on, by message and module, and only then: the warning filters after the run are those of before."""
import warnings

from classification.engine.launch import UPSTREAM_WARNINGS, upstream_warnings_ignored


def test_upstream_warnings_are_ignored_for_the_run_only():
    message, module = next((m, mod) for m, mod in UPSTREAM_WARNINGS if mod == "mmseg.models.builder")

    def warn(source):
        warnings.warn_explicit(f"{message} (test)", UserWarning, "builder.py", 1, module=source)

    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        before = list(warnings.filters)
        with upstream_warnings_ignored():
            warn(module)  # ignored
            warn("classification.models.mix_classifier")  # the same text from another module shows
        after = list(warnings.filters)
        warn(module)  # after the run it shows again
    assert [w.filename for w in seen] == ["builder.py", "builder.py"] and after == before
