"""Maintainer scripts run from the checkout (not installed): build_readme."""
