"""Scoring fusion methods on a folder of scenes with the paper's and MEFB's metrics (`mefgan evaluate`).

Scenes are read by ``scenes.find_scenes``, as every command reads them: one subfolder of
exposures per scene, or the flat ``uN.<ext>`` / ``oN.<ext>`` pairs of the original release's
``test_imgs`` (scene ``N``). The brightest exposure by mean luminance is the over-, the darkest
the under-exposed source, as for `mefgan fuse` (``pairings.load_scene``). Ground truth is optional,
``<gt dir>/<scene>.<ext>`` (``--gt``; by default SICE's ``Label/`` folder beside the scenes, if there is one).

Methods are built-in baselines (``mertens``, ``average``), folders of already-fused images
(``NAME=folder:PATH``, ``PATH/<scene>.<ext>``) or trained models (``NAME=model:PATH``). Every
method fuses (or is scored on) the same under/over pair.

A model can also be run with the authors' test-time I/O (``NAME=model-original-io:PATH``, or
``--original-io`` for every ``model:`` method), so that it is scored like their published results:
sources read by PIL without EXIF rotation and cropped at the top-left to multiples of 8, the fused
image stretched by ``bytescale`` and passed through a quality-75 JPEG, as ``generate.py`` writes
it; the sources and ground truth it is scored against are cropped the same way.

A fused image up to 7 rows/columns smaller than its sources is scored against the sources'
top-left crop of its size: the original MEF-GAN code crops its inputs to multiples of 8, so its
results are that much smaller. Any other size difference, a missing image or an unreadable file
leaves that scene out for that method, and it is listed in the outputs, never silently dropped.

The modules, in the order a run uses them:

* ``methods``: the ``--method`` specs, parsed, and their models loaded;
* ``scoring``: every method fused and scored on every scene (``score_scenes``), one ``Row`` each;
  the report's columns are the table ``scoring.MEASURES``;
* ``fused``: ``--save-fused``, each fused image and a contact sheet per scene;
* ``report``: the statistics over scenes and the report files; ``chart``: its bar chart.
"""
