"""What every task's tools use to run mmengine: launch (prepare_config, train / test entry points), lifecycle (one run:
build, train / test, clean end), config_check, runner, hooks,
optim_wrapper (the guarded optimiser wrappers), preemption, compile (torch.compile hook), errors (UserError,
run_tool); checkpoints (strict and weights-only loading), checkpoint_sources (external layouts), atomic (atomic
writes, the ``atomic_local`` backend), distributed (gloo on CPU hosts, clean shutdown), host (ROOT, threads, loader
workers, the machine description). Importing it registers the ``atomic_local`` checkpoint backend (``segmentation``
and ``detection`` import it for that).
"""
from . import atomic  # noqa: F401  (registers the atomic_local backend)
