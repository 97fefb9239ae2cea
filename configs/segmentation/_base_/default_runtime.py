# Runtime shared by every segmentation config: mmseg's default runtime with a fixed seed, so the same command on the
# same machine gives the same metrics (another seed: --cfg-options randomness.seed=N).
_base_ = ["mmseg::_base_/default_runtime.py"]
randomness = dict(seed=0, deterministic=False)
