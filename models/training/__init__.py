"""Training data for the learned verification stage: the dataset builder, its split rule and augmentation."""
