"""Augmentation: the --augment language, the operations, and applying them while training."""
