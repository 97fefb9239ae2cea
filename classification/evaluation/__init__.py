"""Evaluators: mmengine metrics, each registered in ``METRICS`` where it is defined and named by the configs'
``val_evaluator`` / ``test_evaluator`` (:mod:`classification.register_all` imports them). ``accuracy``:
``TopKAccuracy``, on the ``dict(logits (B,K), labels (B,))`` per batch of the classifier's predict mode.
"""
