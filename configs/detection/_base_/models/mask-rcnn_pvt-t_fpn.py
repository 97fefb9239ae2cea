# Mask R-CNN + FPN on a PVT v1 Tiny backbone (mmdet's PyramidVisionTransformer with the v1 settings: absolute
# position embeddings, plain MLP FFN, non-overlapping patch embeddings, no norm after the stages).
# No pretrained weights here: the method configs set backbone.init_cfg to a converted classifier checkpoint.
_base_ = 'mmdet::_base_/models/mask-rcnn_r50_fpn.py'

model = dict(
    backbone=dict(
        _delete_=True,
        type='StrictPyramidVisionTransformer',  # mmdet's PVT loading its init_cfg checkpoint strictly (detection/)
        pretrain_img_size=224,  # the classifier's input size: sets the shape of the position embeddings
        in_channels=3,
        embed_dims=64,  # stage widths embed_dims x num_heads = 64, 128, 320, 512
        num_stages=4,
        num_layers=[2, 2, 2, 2],
        num_heads=[1, 2, 5, 8],
        patch_sizes=[4, 2, 2, 2],
        strides=[4, 2, 2, 2],
        paddings=[0, 0, 0, 0],
        sr_ratios=[8, 4, 2, 1],
        mlp_ratios=[8, 8, 4, 4],
        out_indices=(0, 1, 2, 3),
        qkv_bias=True,
        drop_rate=0.0,
        attn_drop_rate=0.0,
        drop_path_rate=0.1,
        use_abs_pos_embed=True,
        norm_after_stage=False,
        use_conv_ffn=False,
        norm_cfg=dict(type='LN', eps=1e-6),
        # our converted checkpoints already carry mmdet's key names (tools/convert_checkpoint.py --to mmdet-pvt)
        convert_weights=False),  # init_cfg left unset (random init): the method configs point it at a checkpoint
    neck=dict(type='FPN', in_channels=[64, 128, 320, 512], out_channels=256, num_outs=5),
)
