# The Segmenter linear head (a 1×1 classifier on the patch tokens) of `tools/reproduce.py --set downstream`: the mask
# head's run (segmenter-mask_tiny-vit_scratch_1xb16-1500i_composite-dim-64.py: data, schedule, CE + Dice) with
# mmseg's FCNHead without convolutions in place of the mask transformer.
_base_ = ["./segmenter-mask_tiny-vit_scratch_1xb16-1500i_composite-dim-64.py"]
model = dict(decode_head=dict(_delete_=True, type="FCNHead", in_channels=64, channels=64, num_convs=0,
                              dropout_ratio=0.0, concat_input=False, num_classes=11,
                              loss_decode=[dict(type="CrossEntropyLoss", use_sigmoid=False, loss_weight=1.0),
                                           dict(type="DiceLoss", use_sigmoid=False, loss_weight=1.0)]))
