"""tests/conftest.py: missing data, a missing dependency or a stray skip are skips normally and failures under
MIXPRO_STRICT_SKIPS=1; a GPU-only test stays a skip in both. Runs pytest on a small suite that uses the conftest."""
import os
import os.path as osp
import shutil
import subprocess
import sys
from xml.etree import ElementTree

import torch

HERE = osp.dirname(osp.abspath(__file__))

SUITE = '''
import pytest

@pytest.mark.needs_data("/nonexistent/fashion-mnist")
def test_missing_data():
    pass

@pytest.mark.needs_data(__file__)
def test_present_data():
    pass

def test_stray_skip():
    pytest.skip("something is not installed")

@pytest.mark.gpu
def test_gpu_only():
    import torch
    assert torch.cuda.is_available()

@pytest.mark.gpu
@pytest.mark.needs_data("/nonexistent/labelme")
def test_gpu_and_missing_data():
    pass
'''
MODULE_SKIP = 'import pytest\npytest.importorskip("a_module_that_is_not_installed")\n\ndef test_never_runs():\n    pass\n'


def run_suite(tmp_path, strict: bool) -> dict:
    """Run the small suite with our conftest → (test name or module name → 'passed'|'skipped'|'failed'|'error')."""
    shutil.copy(osp.join(HERE, "conftest.py"), tmp_path / "conftest.py")
    (tmp_path / "test_suite.py").write_text(SUITE)
    (tmp_path / "test_module_skip.py").write_text(MODULE_SKIP)
    env = {k: v for k, v in os.environ.items() if k != "MIXPRO_STRICT_SKIPS"}
    if strict:
        env["MIXPRO_STRICT_SKIPS"] = "1"
    report = tmp_path / "report.xml"
    proc = subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "--rootdir", str(tmp_path), "-c",
                           os.devnull, "-rs", "--continue-on-collection-errors", f"--junitxml={report}", str(tmp_path)],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    outcomes = {}
    for case in ElementTree.parse(report).iter("testcase"):
        kinds = [child.tag for child in case if child.tag in ("skipped", "failure", "error")]
        outcomes[case.get("name")] = {"skipped": "skipped", "failure": "failed", "error": "error"}.get(
            kinds[0] if kinds else None, "passed")
    return dict(outcomes=outcomes, rc=proc.returncode, out=proc.stdout + proc.stderr)


def test_skips_are_skips_by_default(tmp_path):
    result = run_suite(tmp_path, strict=False)
    gpu = "passed" if torch.cuda.is_available() else "skipped"
    assert result["outcomes"] == {"test_missing_data": "skipped", "test_present_data": "passed",
                                  "test_stray_skip": "skipped", "test_gpu_only": gpu,
                                  "test_gpu_and_missing_data": "skipped", "test_module_skip": "skipped"}, result["out"]
    assert result["rc"] == 0
    assert "missing data: /nonexistent/fashion-mnist" in result["out"]


def test_strict_mode_fails_every_skip_but_the_gpu_ones(tmp_path):
    result = run_suite(tmp_path, strict=True)
    outcomes = result["outcomes"]
    cuda = torch.cuda.is_available()
    # a skip in the setup phase turns into an error of the setup, one in the test body into a failure; a GPU test
    # that needs missing data skips without CUDA (it could not run anyway) and errors with it
    assert outcomes == {"test_missing_data": "error", "test_present_data": "passed", "test_stray_skip": "failed",
                        "test_gpu_only": "passed" if cuda else "skipped",
                        "test_gpu_and_missing_data": "error" if cuda else "skipped",
                        "test_module_skip": "error"}, result["out"]
    assert result["rc"] == 1
    assert "MIXPRO_STRICT_SKIPS=1" in result["out"] and "/nonexistent/fashion-mnist" in result["out"]
    assert "a_module_that_is_not_installed" in result["out"]


def test_the_ci_entry_point_runs_strict():
    ci = open(osp.join(osp.dirname(HERE), ".ci", "run")).read()
    assert "\nMIXPRO_STRICT_SKIPS=1 make test " in ci
