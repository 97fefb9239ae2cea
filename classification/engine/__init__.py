"""Running a config with mmengine: launch (``prepare_config``, the train / test entry points), lifecycle (one run:
build, train / test, clean end), config_check, runner, hooks, optim_wrapper (the guarded optimiser wrappers),
preemption, compile (the torch.compile hook), distributed (gloo on CPU hosts, clean shutdown).
"""
