"""Training: supervision targets, losses, task objects."""
