"""``decon review``: reading contamination reports and presenting them for inspection."""
