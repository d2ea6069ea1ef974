"""Using a trained model: rebuilding it from a checkpoint, evaluating it, predicting with it."""
