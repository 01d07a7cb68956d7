"""Test-time optimisation of bodies in scenes: ``sahmr refine`` (scene-constrained refinement of any
method's predictions) and ``sahmr fit`` (the PROX-style fitting baseline from 2D keypoints).

Modules, bottom up: ``terms`` (energy terms), ``prior`` (pose prior, joint limits), ``body_fit`` (body
parameters, fit to vertices), ``optimize`` (refinement of a batch), ``fitting`` (keypoint fitting of a
batch), ``keypoints`` (keypoint files), ``batches`` (resumable batched runs), ``run`` (split-level entry
points), ``cli``.
"""
