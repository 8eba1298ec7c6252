"""Impression-log I/O: finding files, the ``tf.data`` reader, the writer, value checks,
validation, dataset directories and the ground-truth file."""
