"""clusters layer."""
