"""tools/setup.sh: the C++ standard read from torch's headers, the pins it keeps, and the system-torch mode installed
offline (--no-index, from a wheelhouse filled by ``--fill-wheelhouse``) into a second venv that already holds the
project's torch (its files linked from .venv, not a second copy)."""
import glob
import json
import os
import os.path as osp
import re
import subprocess
import sys
from importlib.metadata import distribution, version

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name, parse_sdist_filename, parse_wheel_filename

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
SETUP = osp.join(ROOT, "tools/setup.sh")


def setup_function_output(call: str) -> subprocess.CompletedProcess:
    """Run ``call`` in bash after sourcing tools/setup.sh (its functions, not its main)."""
    return subprocess.run(["bash", "-c", f'source "{SETUP}" && {call}'], capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("cplusplus, flag", [("201703L", "c++17"), ("202002L", "c++20")])
def test_cxx_standard_is_read_from_the_aten_guard(tmp_path, cplusplus, flag):
    (tmp_path / "ATen").mkdir()
    (tmp_path / "ATen/ATen.h").write_text(f"#pragma once\n#if !defined(_MSC_VER) && __cplusplus < {cplusplus}\n"
                                          f"#error C++ or later compatible compiler is required to use ATen.\n#endif\n")
    out = setup_function_output(f'cxx_std_of_headers "{tmp_path}"')
    assert out.returncode == 0 and out.stdout.strip() == flag, out.stderr


def test_cxx_standard_of_the_installed_torch_and_unreadable_headers(tmp_path):
    import torch
    header = open(osp.join(osp.dirname(torch.__file__), "include/ATen/ATen.h")).read()
    want = {"201703": "c++17", "202002": "c++20"}[re.search(r"__cplusplus < (\d{6})L", header).group(1)]
    out = setup_function_output(f'torch_cxx_std "{sys.executable}"')
    assert out.stdout.strip() == want, out.stderr
    (tmp_path / "ATen").mkdir()
    (tmp_path / "ATen/ATen.h").write_text("#pragma once\n")
    out = setup_function_output(f'cxx_std_of_headers "{tmp_path}"')
    assert out.returncode != 0 and "cannot tell which C++ standard" in out.stderr
    assert setup_function_output(f'cxx_std_of_headers "{tmp_path}/none"').returncode != 0


def test_system_mode_keeps_present_versions_and_the_project_pins(tmp_path):
    constraints = tmp_path / "c.txt"
    out = setup_function_output(f'write_constraints "{sys.executable}" "{constraints}"')
    assert out.returncode == 0, out.stderr
    # the versions pip compares with: the installed distributions' metadata
    assert constraints.read_text().split() == [f"{n}=={version(n)}" for n in ("torch", "torchvision", "numpy")]
    out = setup_function_output("unpinned numpy==2.2.6 'setuptools<82' timm==1.0.31 mmdet==3.3.0 gymnasium==1.4.0 "
                                "stable-baselines3==2.9.2 pillow 'scipy==1.15.3'")
    assert out.stdout.split() == ["numpy", "setuptools<82", "timm==1.0.31", "mmdet==3.3.0", "gymnasium==1.4.0",
                                  "stable-baselines3==2.9.2", "pillow", "scipy"]
    bad = subprocess.run(["bash", SETUP], env=dict(os.environ, MIXPRO_TORCH="conda"), capture_output=True, text=True)
    assert bad.returncode != 0 and "MIXPRO_TORCH=conda" in bad.stderr


def torch_closure() -> list:
    """torch, torchvision and everything they require (in this environment, extras followed), as distributions."""
    seen, todo, dists = set(), [("torch", ()), ("torchvision", ())], {}
    while todo:
        name, extras = todo.pop()
        name = canonicalize_name(name)
        if (name, extras) in seen:
            continue
        seen.add((name, extras))
        dist = dists.setdefault(name, distribution(name))
        for req in map(Requirement, dist.requires or []):
            if req.marker is None or any(req.marker.evaluate({"extra": e}) for e in ("", *extras)):
                todo.append((req.name, tuple(sorted(req.extras))))
    return list(dists.values())


def project_of(filename: str) -> str:
    """The canonical project name of a wheel or sdist file name."""
    if filename.endswith(".whl"):
        return parse_wheel_filename(filename)[0]
    return parse_sdist_filename(filename)[0]


def link_torch_site(site: str, dest: str) -> None:
    """A site directory holding only torch/torchvision and their requirements: symlinks into .venv's site-packages."""
    os.makedirs(dest)
    tops = set()
    for dist in torch_closure():
        for f in dist.files or []:
            if not str(f).startswith(".."):
                tops.add(f.parts[0])
    for top in sorted(tops):
        if osp.exists(osp.join(site, top)):
            os.symlink(osp.join(site, top), osp.join(dest, top))


@pytest.mark.slow
@pytest.mark.timeout(1500)
def test_system_torch_offline_install_into_a_venv_that_holds_torch(tmp_path):
    """Fill a wheelhouse (system mode: no torch in it), then install offline into a fresh venv whose site sees
    .venv's torch through a .pth: no second torch appears, pip check is clean but for mm* metadata, the self-check
    (mmcv ops included: the wheel cached by `make setup` for this torch) passes."""
    import torch
    site = osp.dirname(osp.dirname(torch.__file__))
    system = str(tmp_path / "system-site")
    link_torch_site(site, system)
    venv = str(tmp_path / "venv")
    subprocess.run([sys._base_executable, "-m", "venv", venv], check=True, timeout=300)
    venv_site = glob.glob(osp.join(venv, "lib/python3*/site-packages"))[0]
    with open(osp.join(venv_site, "system-torch.pth"), "w") as f:
        f.write(system + "\n")
    py = osp.join(venv, "bin/python")
    base_env = dict(os.environ, PYTHON=py, MIXPRO_TORCH="system", MIXPRO_SKIP_APT="1")

    wheelhouse = str(tmp_path / "wheelhouse")
    fill = subprocess.run(["bash", SETUP, "--fill-wheelhouse", wheelhouse], env=base_env, capture_output=True,
                          text=True, timeout=900)
    assert fill.returncode == 0, (fill.stdout + fill.stderr)[-4000:]
    files = os.listdir(wheelhouse)
    assert "mmcv-2.1.0.tar.gz" in files and any(f.startswith("mmdet-3.3.0") for f in files)
    # torch, torchvision and the CUDA libraries they pull (triton, cuda-toolkit, nvidia-cublas, ...) stay out; the
    # extra .[dali] brings CUDA packages of its own (nvidia-dali-*, nvidia-nvjpeg, ...), which are not torch's
    torch_stack = {canonicalize_name(d.metadata["Name"]) for d in torch_closure()}
    torch_stack = {n for n in torch_stack if re.match(r"(torch|triton|cuda|nvidia)", n)}
    assert {"torch", "torchvision"} <= torch_stack
    in_wheelhouse = {project_of(f) for f in files}
    assert not in_wheelhouse & torch_stack, f"torch's own packages in the wheelhouse: {in_wheelhouse & torch_stack}"

    # offline: no pip configuration (no find-links or extra index of this machine), --no-index from the wheelhouse
    offline = {k: v for k, v in base_env.items() if not k.startswith("PIP_")}
    offline.update(PIP_CONFIG_FILE=os.devnull, MIXPRO_VENV=venv, MIXPRO_WHEELHOUSE=wheelhouse)
    proc = subprocess.run(["bash", SETUP], env=offline, capture_output=True, text=True, timeout=1200)
    log = proc.stdout + proc.stderr
    assert proc.returncode == 0, log[-5000:]
    assert "self-check ok" in log and re.search(r"phase 'base requirements': \d+ s", log)
    assert re.search(r"system torch: keeping torch==\S+ torchvision==", log)

    assert not glob.glob(osp.join(venv_site, "torch*")), "a second torch was installed into the venv"
    where = subprocess.run([py, "-c", "import torch, torchvision; print(torch.__file__, torch.__version__)"],
                           capture_output=True, text=True, check=True).stdout.split()
    assert where == [osp.join(system, "torch", "__init__.py"), torch.__version__]
    check = subprocess.run([py, "-m", "pip", "check"], capture_output=True, text=True, env=offline)
    problems = [line for line in check.stdout.splitlines()
                if line.strip() and not re.match(r"(mmcv|mmengine|mmdet|mmsegmentation) ", line)]
    assert not problems, check.stdout
    again = subprocess.run(["bash", SETUP], env=offline, capture_output=True, text=True, timeout=600)
    assert again.returncode == 0 and "environment up to date" in again.stdout, again.stdout[-2000:]


# A stand-in for the interpreter that build_mmcv drives: it answers the torch queries, fakes the sdist download and
# the wheel steps, and appends every call (arguments, the build variables in its environment, the -std flag of the
# setup.py in its working directory) to $STUB_LOG as one JSON line.
STUB_PYTHON = r'''#!{python}
import io, json, os, re, sys, tarfile
args = sys.argv[1:]
keys = ("MMCV_WITH_OPS", "FORCE_CUDA", "MAX_JOBS", "TORCH_CUDA_ARCH_LIST", "PIP_CONSTRAINT")
record = {{"args": args, "env": {{k: os.environ[k] for k in keys if k in os.environ}}}}
if "PIP_CONSTRAINT" in os.environ:
    record["constraint"] = open(os.environ["PIP_CONSTRAINT"]).read().strip()
if os.path.exists("setup.py"):
    record["std"] = re.findall(r"-std=[a-z0-9+]+", open("setup.py").read())
with open(os.environ["STUB_LOG"], "a") as log:
    log.write(json.dumps(record) + "\n")
wheel = "mmcv-2.1.0-cp311-cp311-linux_x86_64.whl"
if args[:1] == ["-c"]:
    code = args[1]
    if "torch.__version__" in code:
        print("2.14.1")
    elif "cuda.is_available" in code:
        sys.exit(0 if os.environ["STUB_GPUS"] else 1)
    elif "include" in code:
        print(os.environ["STUB_INCLUDE"])
elif args == ["-"]:  # cuda_arch_list
    print(os.environ["STUB_GPUS"])
elif args[:2] == ["-m", "pip"] and args[2] == "download":
    data = b"extra_compile_args = ['-std=c++17']\n"
    with tarfile.open(os.path.join(args[args.index("-d") + 1], "mmcv-2.1.0.tar.gz"), "w:gz") as tar:
        info = tarfile.TarInfo("mmcv-2.1.0/setup.py"); info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
elif args[:3] == ["-m", "pip", "wheel"]:
    out = args[args.index("-w") + 1]; os.makedirs(out, exist_ok=True)
    open(os.path.join(out, wheel), "w").close()
elif args[:3] == ["-m", "wheel", "unpack"]:
    os.makedirs(os.path.join(args[args.index("-d") + 1], "mmcv-2.1.0"))
elif args[:3] == ["-m", "wheel", "pack"]:
    open(os.path.join(args[args.index("-d") + 1], wheel), "w").close()
'''


@pytest.mark.parametrize("gpus, arch_env, max_jobs", [
    ("", None, None),                 # a CPU machine: no architecture list at all
    ("8.0;9.0", None, "3"),           # GPUs found by torch: their architectures
    ("9.0", "8.0;9.0", None),         # TORCH_CUDA_ARCH_LIST given by the user wins
])
def test_mmcv_build_command_carries_its_variables(tmp_path, gpus, arch_env, max_jobs):
    """build_mmcv from a cold wheel cache, driven through a stub interpreter: the sdist is fetched with the setuptools
    constraint, setup.py gets torch's C++ standard, and the pip-wheel call sees MMCV_WITH_OPS, FORCE_CUDA, MAX_JOBS
    and TORCH_CUDA_ARCH_LIST exactly when it should; the wheel lands in the cache under the right tag and is
    installed. (An optional word between shell assignments once made `MAX_JOBS=2` the command on CPU machines.)"""
    stub = tmp_path / "python"
    stub.write_text(STUB_PYTHON.format(python=sys.executable))
    stub.chmod(0o755)
    (tmp_path / "include/ATen").mkdir(parents=True)
    (tmp_path / "include/ATen/ATen.h").write_text("#if __cplusplus < 202002L\n#error C++20\n#endif\n")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    if gpus:
        (bin_dir / "nvcc").write_text("#!/bin/sh\n")
        (bin_dir / "nvcc").chmod(0o755)
    env = {k: v for k, v in os.environ.items() if k not in ("TORCH_CUDA_ARCH_LIST", "MAX_JOBS")}
    env.update(PATH=f"{bin_dir}:{env['PATH']}", STUB_LOG=str(tmp_path / "calls.jsonl"), STUB_GPUS=gpus,
               STUB_INCLUDE=str(tmp_path / "include"))
    if arch_env:
        env["TORCH_CUDA_ARCH_LIST"] = arch_env
    if max_jobs:
        env["MAX_JOBS"] = max_jobs
    call = (f'PY="{stub}"; PIP=("$PY" -m pip install -q); WHEELS="{tmp_path}/cache"; WHEELHOUSE=""; build_mmcv')
    out = subprocess.run(["bash", "-c", f'source "{SETUP}" && {call}'], env=env, capture_output=True, text=True,
                         timeout=60)
    assert out.returncode == 0, out.stdout + out.stderr
    calls = [json.loads(line) for line in (tmp_path / "calls.jsonl").read_text().splitlines()]
    download = next(c for c in calls if c["args"][:3] == ["-m", "pip", "download"])
    assert download["constraint"] == "setuptools<82"
    build = next(c for c in calls if c["args"][:3] == ["-m", "pip", "wheel"])
    arch = arch_env or gpus
    want = {"MMCV_WITH_OPS": "1", "FORCE_CUDA": "1" if gpus else "0",
            "MAX_JOBS": max_jobs or subprocess.check_output(["nproc"], text=True).strip()}
    if arch:
        want["TORCH_CUDA_ARCH_LIST"] = arch
    assert build["env"] == want
    assert {"--no-build-isolation", "--no-deps", "--no-index"} <= set(build["args"])
    assert build["std"] == ["-std=c++20"]
    tag = "cuda-sm" + arch.replace(";", "").replace(".", "") if gpus else "cpu"
    cached = glob.glob(str(tmp_path / f"cache/mmcv-2.1.0-torch2.14.1-{tag}/mmcv-*.whl"))
    assert len(cached) == 1
    assert calls[-1]["args"] == ["-m", "pip", "install", "-q", "--no-deps", cached[0]]
