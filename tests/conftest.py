"""Suite-wide markers and the strict-skips mode of CI.

Markers:
  - ``@pytest.mark.gpu``: needs CUDA; skipped without it — the only skip that strict mode keeps.
  - ``@pytest.mark.needs_data(path, ...)``: needs these files or folders (the Debian data packages that
    ``make setup`` installs); skipped when one is missing, naming it.

Strict mode (``MIXPRO_STRICT_SKIPS=1``, set by ``.ci/run``): every other skip fails the test — missing data, a
module-level skip, a stray ``pytest.skip`` — so a broken ``make setup`` cannot turn into a green run. Hard
dependencies (timm, mmcv, mmseg, mmdet, stable-baselines3, scipy, ...) are plain imports and fail without it anyway.
"""
import os
import os.path as osp

import pytest

STRICT = os.environ.get("MIXPRO_STRICT_SKIPS", "") not in ("", "0")
GPU_SKIP = "GPU only: "


def pytest_configure(config):
    config.addinivalue_line("markers", "gpu: needs CUDA; skipped without it (the only skip strict mode keeps)")
    config.addinivalue_line("markers", "needs_data(path, ...): needs these files or folders; skipped when one is "
                                       "missing (a failure under MIXPRO_STRICT_SKIPS=1)")


def pytest_runtest_setup(item):
    if item.get_closest_marker("gpu"):
        import torch  # only for GPU tests: importing torch takes seconds

        if not torch.cuda.is_available():
            pytest.skip(GPU_SKIP + "no CUDA device")
    for marker in item.iter_markers("needs_data"):
        missing = [p for p in marker.args if not osp.exists(p)]
        if missing:
            pytest.skip(f"missing data: {', '.join(missing)} (installed by `make setup`: apt packages "
                        f"dataset-fashion-mnist, labelme-examples)")


def _is_gpu_skip(item, report) -> bool:
    return item.get_closest_marker("gpu") is not None and GPU_SKIP in str(report.longrepr)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if STRICT and report.skipped and not hasattr(report, "wasxfail") and not _is_gpu_skip(item, report):
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        report.outcome = "failed"
        report.longrepr = f"MIXPRO_STRICT_SKIPS=1: only GPU-only tests may skip; this one skipped: {reason}"


@pytest.hookimpl(hookwrapper=True)
def pytest_make_collect_report(collector):
    outcome = yield
    report = outcome.get_result()
    if STRICT and report.skipped:
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        report.outcome = "failed"
        report.longrepr = f"MIXPRO_STRICT_SKIPS=1: {collector.nodeid} skipped at collection: {reason}"
