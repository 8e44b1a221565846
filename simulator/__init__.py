"""Synthetic 90-day session generator and replayer (step 3)."""
