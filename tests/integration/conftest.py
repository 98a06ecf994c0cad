from tests.integration.rollout_fixtures import engine, estate, sessions, sim

__all__ = ["engine", "estate", "sessions", "sim"]
