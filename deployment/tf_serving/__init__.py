"""tf_serving."""
