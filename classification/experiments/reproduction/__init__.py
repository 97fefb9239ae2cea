"""The Fashion-MNIST reproduction behind ``tools/reproduce.py`` (``make reproduce``): every mixing method with the
tiny ViT, several seeds, one epoch budget.

- :mod:`.runs`: which methods (configs), budget → epochs and schedule, one run (train, test, 50% patch drop) in its
  own process, the ``result.json`` cache, the loop over (method, seed) with measured time estimates (:mod:`.estimates`);
- :mod:`.stats`: mean ± sample std over seeds and the check of the paper's ranking MixPro > TransMix > baseline;
- :mod:`.report`: the Markdown report and the bar plot;
- :mod:`.cli`: the command line;
- :mod:`.paper_tables`, :mod:`.paper_plan` (with :mod:`.paper_recipe`, :mod:`.paper_scripts`), :mod:`.paper_cli`:
  ``tools/paper_tables.py`` (the paper's tables at full scale; docs/clusters.md).
"""
