"""``python -m mefgan_tf.cli``: the `mefgan` console script."""
import sys

from mefgan_tf.cli import main

sys.exit(main())
