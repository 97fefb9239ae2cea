# Runtime shared by every classification config: hooks, logging, environment, registration of our modules.
default_scope = None
custom_imports = dict(imports=["classification.register_all"], allow_failed_imports=False)

default_hooks = dict(
    # log variables read on the host only at the logging intervals; the non-finite-loss guard checked on the device
    runtime_info=dict(type="SyncFreeRuntimeInfoHook"),
    timer=dict(type="IterTimerHook"),
    logger=dict(type="LoggerHook", interval=50),
    param_scheduler=dict(type="ParamSchedulerHook"),
    # atomic writes (temp file + fsync + rename); keeps the newest 3 and the best top-1
    checkpoint=dict(type="CheckpointHook", interval=1, max_keep_ckpts=3, save_best="top1", rule="greater",
                    backend_args=dict(backend="atomic_local")),
    sampler_seed=dict(type="DistSamplerSeedHook"),
)
custom_hooks = [dict(type="TrainingCurveHook", interval=20), dict(type="CorruptSampleHook"),
                dict(type="AmpSkippedStepsHook")]

env_cfg = dict(cudnn_benchmark=True, mp_cfg=dict(mp_start_method="fork", opencv_num_threads=0),
               dist_cfg=dict(backend="nccl"))
log_processor = dict(window_size=20, by_epoch=True)
log_level = "INFO"
load_from = None
resume = False
randomness = dict(seed=0, deterministic=False)
val_evaluator = dict(type="TopKAccuracy", topk=(1, 5))
test_evaluator = val_evaluator
