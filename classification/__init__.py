"""classification package."""
