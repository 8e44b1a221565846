"""The Falcon REST API for ingesting sessions and reading scores (step 2)."""
