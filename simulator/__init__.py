"""Synthetic 90-day session generator and replayer: realistic tutors, replayed as Rails would send them."""
