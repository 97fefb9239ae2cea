# Sourced by tools/dist_train.sh and tools/dist_test.sh: sets ROOT, PY and TORCHRUN, the torchrun command up to
# --nproc_per_node. One node without PORT: --standalone (torchrun takes a free port of this host, so runs on one host
# do not collide); NNODES > 1 or PORT set: the explicit rendezvous NNODES, NODE_RANK, MASTER_ADDR, PORT (default
# 29500, the same on every node). PYTHON: the interpreter with torch (default .venv/bin/python, else python).
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PY="${PYTHON:-$( [ -x "$ROOT/.venv/bin/python" ] && echo "$ROOT/.venv/bin/python" || echo python )}"
if [ -z "${PORT:-}" ] && [ "${NNODES:-1}" = 1 ]; then
  TORCHRUN=("$PY" -m torch.distributed.run --standalone)
else
  TORCHRUN=("$PY" -m torch.distributed.run --nnodes="${NNODES:-1}" --node_rank="${NODE_RANK:-0}"
            --master_addr="${MASTER_ADDR:-127.0.0.1}" --master_port="${PORT:-29500}")
fi
