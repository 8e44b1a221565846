"""Per-session HTML email reports (step 5)."""
