"""Built-in run callbacks: experiment trackers that ``--log`` names (TensorBoard, MLflow)."""
