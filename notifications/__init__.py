"""HTML email reports for admins (premailer): not built yet; this package reserves its place."""
