"""Comparing runs: config differences, results, filters and colours (Qt-free), and the views."""
