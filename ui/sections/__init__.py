"""Sections that belong to one page each (the pages import them); ui/ itself holds what every page shares."""
