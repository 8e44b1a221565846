"""Optional rule plugins (no-show, first-session quality) that register like any third-party rule."""
