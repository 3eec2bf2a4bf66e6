"""Data for development and measurement, never used by a request: the demo (`flask crm demo`)
and synthetic data at scale (`flask crm generate`)."""
