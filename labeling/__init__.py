"""labeling package."""
