"""The Falcon REST API: sessions in, scores and histories out."""
