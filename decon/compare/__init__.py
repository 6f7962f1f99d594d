"""``decon compare``: differences between the reports of two detect runs."""
