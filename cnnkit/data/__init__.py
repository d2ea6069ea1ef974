"""Datasets as uint8 image tensors with integer labels, split into train/val/(test)."""
