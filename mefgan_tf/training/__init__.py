"""`mefgan train`: the original MEF-GAN recipe on a patch file, resumable, on TensorFlow or JAX.

The modules, from the command down:

* ``settings``: what a run is asked to do (``TrainOptions``), its config new or resumed, and the
  rules its run folder keeps;
* ``run``: one run (``train_run``): the cluster, the chosen backend, the loop;
* ``loop``: the run loop of both backends (``run_loop``) and what it needs from a backend;
* ``core``: the recipe both backends share (optimizers, balancing, step accounting, summaries,
  the NaN guard);
* ``tensorflow_backend`` and ``jax_backend``: each backend's steps, checkpoints and log.

Nothing is imported here: `mefgan train --help` reads ``settings`` without Keras, and Keras's backend
is chosen before a backend module is imported.
"""
