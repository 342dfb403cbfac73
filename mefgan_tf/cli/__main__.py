"""``python -m mefgan_tf.cli``: the `mefgan` console script."""
from mefgan_tf.cli import console

console()
