"""Side-by-side benchmarks of tfexperiment against tf.estimator (``python -m benchmarks``)."""
