"""The classifier family: model cards, builders, data, training, evaluation, inference."""
