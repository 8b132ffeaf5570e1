"""Use cases and the ports they need: orchestration, concurrency and deadlines."""
