"""tools/dist_launch.sh (sourced by tools/dist_train.sh and tools/dist_test.sh): the torchrun command line per
environment — one node without PORT uses torchrun's --standalone rendezvous (a free port, so two runs on one host do
not collide on 29500); PORT or several nodes give the explicit rendezvous, PORT defaulting to 29500."""
import os
import subprocess

import pytest

from classification.foundation.host import ROOT


def torchrun(**env):
    clean = {k: v for k, v in os.environ.items() if k not in ("PORT", "NNODES", "NODE_RANK", "MASTER_ADDR")}
    proc = subprocess.run(["bash", "-c", 'source tools/dist_launch.sh && printf "%s\\n" "${TORCHRUN[@]}"'], cwd=ROOT,
                          env=dict(clean, PYTHON="py", **env), capture_output=True, text=True, timeout=30)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.splitlines()


@pytest.mark.parametrize("env, expected", [
    ({}, ["--standalone"]),
    ({"NNODES": "1"}, ["--standalone"]),
    ({"PORT": "29601"}, ["--nnodes=1", "--node_rank=0", "--master_addr=127.0.0.1", "--master_port=29601"]),
    ({"NNODES": "2", "NODE_RANK": "1", "MASTER_ADDR": "10.0.0.1"},
     ["--nnodes=2", "--node_rank=1", "--master_addr=10.0.0.1", "--master_port=29500"]),
])
def test_the_rendezvous_of_each_environment(env, expected):
    assert torchrun(**env) == ["py", "-m", "torch.distributed.run", *expected]
