"""Configuration: `pipelines/` and `environments/` loaded and validated into typed models."""

from orchestrator.config.environment import ClusterConfig, Environment
from orchestrator.config.loader import Project
from orchestrator.config.pipeline import Pipeline

__all__ = ["ClusterConfig", "Environment", "Pipeline", "Project"]
