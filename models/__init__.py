"""peforge package."""
