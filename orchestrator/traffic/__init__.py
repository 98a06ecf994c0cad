"""traffic layer."""
