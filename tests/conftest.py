"""Suite-wide markers, the strict-skips mode of CI, and a PVT check shared by two test files.

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
import sys

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


def _managed_classes(manager):
    """Every class of mmengine's ManagerMixin family (each keeps its own ``_instance_dict``)."""
    todo, seen = [manager.ManagerMixin], []
    while todo:
        cls = todo.pop()
        seen.append(cls)
        todo.extend(c for c in cls.__subclasses__() if c not in seen)
    return seen


@pytest.fixture(autouse=True)
def _mmengine_globals_per_test():
    """A test leaves mmengine's global instances (default registry scope, loggers, message hubs, visualizers) as it
    found them, as each run of the tools is a new process: otherwise a later test inherits an earlier one's default
    scope (a segmentation test leaves 'mmseg' current) and a logger that writes to that test's closed capture stream
    ('--- Logging error ---' in the next one's stderr)."""
    manager = sys.modules.get("mmengine.utils.manager")
    before = {cls: dict(cls._instance_dict) for cls in _managed_classes(manager)} if manager else {}
    yield
    manager = sys.modules.get("mmengine.utils.manager")
    for cls in _managed_classes(manager) if manager else ():
        cls._instance_dict.clear()
        cls._instance_dict.update(before.get(cls, {}))


def _assert_pvt_stages_match(classifier, backbone, x):
    """Stages 1-3 of our PVT ``classifier`` (``forward_stage``) equal those of mmdet's PVT ``backbone`` on images
    ``x`` (B,3,H,W), to 1e-4 (stage 4 differs: the classifier's also attends to its CLS token). Returns the
    backbone's four feature maps (B,C_i,H_i,W_i)."""
    import torch

    with torch.no_grad():
        outs = backbone(x)
        feats = x
        for i in range(3):
            tokens, hw = classifier.forward_stage(i, feats)
            feats = tokens.transpose(1, 2).reshape(x.shape[0], -1, *hw)
            torch.testing.assert_close(feats, outs[i], atol=1e-4, rtol=1e-4)
    return outs


@pytest.fixture
def assert_pvt_stages_match():
    """``check(classifier, backbone, x) -> backbone outputs``: our PVT and mmdet's agree on stages 1-3."""
    return _assert_pvt_stages_match


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
