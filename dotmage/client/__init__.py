"""The dotMage client: HTTP API, local state, key cache, and the operations."""
