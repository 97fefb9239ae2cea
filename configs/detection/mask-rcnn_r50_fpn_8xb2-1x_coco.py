# Table 3's reference row Mask R-CNN ResNet-50 1x: mmdet's own config (mask_rcnn/mask-rcnn_r50_fpn_1x_coco.py: SGD
# lr 0.02, batch 16 = 8 GPUs × 2, 12 epochs, torchvision's ImageNet ResNet-50, a download) with our runtime (seed,
# atomic checkpoints). Its published result (mmdet model zoo: box AP 38.2, mask AP 34.7) calibrates the
# COCO set-up of a cluster run; the paper's row (PVT's Table) is printed beside it by tools/paper_tables.py collect.
_base_ = ['mmdet::mask_rcnn/mask-rcnn_r50_fpn_1x_coco.py']
# our runtime (_base_/default_runtime.py, which cannot be a second base: mmdet's runtime would be defined twice)
custom_imports = dict(imports=['detection'], allow_failed_imports=False)
default_hooks = dict(checkpoint=dict(type='CheckpointHook', interval=1, max_keep_ckpts=3,
                                     backend_args=dict(backend='atomic_local')))
randomness = dict(seed=0, deterministic=False)
