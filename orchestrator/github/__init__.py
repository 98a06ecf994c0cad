"""GitHub through github3.py: deployments and their statuses (`deployments.py`)."""
