"""Being written (placeholder until its issue lands)."""
