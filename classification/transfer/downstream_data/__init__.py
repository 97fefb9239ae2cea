"""Small segmentation + detection sets generated on the machine, for the downstream configs, the demo and the tests:

- :mod:`.composite`: Fashion-MNIST objects pasted on photos (``make_composite``; ``tools/make_downstream_data.py``);
- :mod:`.labelme`: the real photos of the Debian package ``labelme-examples`` (``make_labelme``;
  ``tools/make_labelme_data.py``);
- :mod:`.pascal_context`: a tiny Pascal Context in the converter's layout (``make_pascal_context``; tests).

They live in ``classification`` because both downstream packages depend on it and on nothing of each other:
``segmentation`` imports mmseg and ``detection`` imports mmdet, while generating a set needs neither (numpy, PIL,
pycocotools and the Fashion-MNIST reader of :mod:`classification.data.fashion_mnist`).
"""
