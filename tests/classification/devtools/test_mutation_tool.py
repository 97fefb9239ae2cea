"""``make mutate`` (classification/devtools/mutation.py): module selection, the scratch copy's mutmut settings, the
verdicts read back and the per-module score, without running mutmut (that takes minutes; docs/development.md)."""
import json
import os.path as osp
import subprocess
import sys
import tomllib

import pytest

from classification.devtools import mutation
from classification.foundation.errors import UserError

from classification.foundation.host import ROOT


def test_every_pairing_names_existing_files_and_the_defaults_resolve():
    for module, tests in mutation.PAIRED_TESTS.items():
        assert osp.isfile(osp.join(ROOT, module)), module
        assert tests and all(osp.isfile(osp.join(ROOT, t)) for t in tests), (module, tests)
    targets = mutation.resolve_modules(mutation.DEFAULT_MODULES)
    assert all(t.module in mutation.PAIRED_TESTS for t in targets)


def test_folders_expand_functions_are_checked_and_unknown_modules_refused():
    core = mutation.resolve_modules(["mixpro_core/"])
    assert {t.module for t in core} == {m for m in mutation.PAIRED_TESTS if m.startswith("mixpro_core/")}
    (target,) = mutation.resolve_modules(["classification/engine/launch.py::shorten_schedule,_schedule_length"])
    assert target.globs() == ["classification.engine.launch.x_shorten_schedule__mutmut_*",
                              "classification.engine.launch.x__schedule_length__mutmut_*"]
    (method,) = mutation.resolve_modules(["classification/experiments/robustness/suites.py::NormalizedModel.forward"])
    assert method.globs() == ["classification.experiments.robustness.suites.xǁNormalizedModelǁforward__mutmut_*"]
    with pytest.raises(UserError, match=r"defines no function or method \['nope'\]"):
        mutation.resolve_modules(["classification/engine/launch.py::shorten_schedule,nope"])
    with pytest.raises(UserError, match="no tests are paired with 'tools/train.py'"):
        mutation.resolve_modules(["tools/train.py"])


def test_the_scratch_copy_gets_the_projects_settings_plus_the_module_and_its_tests(tmp_path, monkeypatch):
    monkeypatch.setattr(mutation, "WORK", tmp_path)  # absolute: ROOT / WORK is tmp_path
    scratch = mutation.prepare_scratch("mixpro_core/schedule.py", fresh=True)
    assert scratch.parent == tmp_path
    written = tomllib.loads((scratch / "pyproject.toml").read_text())
    project = tomllib.loads(open(osp.join(ROOT, "pyproject.toml")).read())
    settings = written["tool"]["mutmut"]
    for key, value in project["tool"]["mutmut"].items():
        assert settings[key] == value, key
    assert settings["only_mutate"] == ["mixpro_core/schedule.py"]
    assert settings["pytest_add_cli_args_test_selection"] == list(mutation.PAIRED_TESTS["mixpro_core/schedule.py"])
    assert settings["source_paths"] == list(mutation.PACKAGES)
    assert "configs" in settings["also_copy"] and "tests" not in settings["also_copy"]  # tests: mutmut's default
    assert written["tool"]["pytest"] == project["tool"]["pytest"] and written["project"] == project["project"]
    assert (scratch / "mixpro_core").resolve() == (mutation.ROOT / "mixpro_core").resolve()
    assert (scratch / "mutants").is_dir() and not (scratch / "mutants").is_symlink()


def test_verdicts_and_score_are_read_from_mutmuts_meta_file(tmp_path):
    meta = tmp_path / "mutants" / "mixpro_core" / "schedule.py.meta"
    meta.parent.mkdir(parents=True)
    codes = {"mixpro_core.schedule.x_f__mutmut_1": 1, "mixpro_core.schedule.x_f__mutmut_2": 0,
             "mixpro_core.schedule.x_g__mutmut_1": 36, "mixpro_core.schedule.x_g__mutmut_2": None,
             "mixpro_core.schedule.x_g__mutmut_3": 33, "mixpro_core.schedule.x_g__mutmut_4": 3}
    meta.write_text(json.dumps(dict(exit_code_by_key=codes)))
    verdicts = mutation.read_verdicts(tmp_path, "mixpro_core/schedule.py")
    assert verdicts == {"killed": ["mixpro_core.schedule.x_f__mutmut_1", "mixpro_core.schedule.x_g__mutmut_4"],
                        "survived": ["mixpro_core.schedule.x_f__mutmut_2"],
                        "timeout": ["mixpro_core.schedule.x_g__mutmut_1"],
                        "not checked": ["mixpro_core.schedule.x_g__mutmut_2"],
                        "no tests": ["mixpro_core.schedule.x_g__mutmut_3"]}
    result = mutation.ModuleResult("mixpro_core/schedule.py", verdicts, 12.0)
    assert result.score == pytest.approx(2 / 4) and result.total == 6
    text = mutation.format_result(result)
    assert text.splitlines()[0].startswith("mixpro_core/schedule.py: score 50.0% (2/6 killed; 2 killed, 1 survived, "
                                           "1 timeout, 1 no tests, 1 not checked) in 12 s")
    assert text.splitlines()[1:] == ["  survived: mixpro_core.schedule.x_f__mutmut_2"]
    only_g = mutation.read_target(tmp_path, mutation.Target("mixpro_core/schedule.py", ("g",)))
    assert sorted(n for names in only_g.values() for n in names) == sorted(k for k in codes if ".x_g_" in k)
    assert mutation.ModuleResult("m", {"not checked": ["a"]}).score is None


def test_the_command_line_refuses_an_unknown_module_in_one_line():
    proc = subprocess.run([sys.executable, "tools/mutate.py", "tools/train.py", "--budget", "5"], cwd=ROOT,
                          capture_output=True, text=True)
    assert proc.returncode == 2 and proc.stderr.startswith("error: no tests are paired with 'tools/train.py'")
    assert len(proc.stderr.strip().splitlines()) == 1
