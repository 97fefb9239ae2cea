# Runtime shared by every detection config: mmdet's default runtime (hooks, visualizer, log processor) with
# atomic checkpoint writes and our safe checkpoint loading (the `detection` package imports classification.engine).
_base_ = 'mmdet::_base_/default_runtime.py'

default_scope = 'mmdet'
custom_imports = dict(imports=['detection'], allow_failed_imports=False)

default_hooks = dict(
    logger=dict(type='LoggerHook', interval=50),
    # temp file + fsync + rename: a killed save never leaves a truncated checkpoint
    checkpoint=dict(type='CheckpointHook', interval=1, max_keep_ckpts=3,
                    backend_args=dict(backend='atomic_local')),
)
randomness = dict(seed=0, deterministic=False)
