"""Executable checks behind the success criteria in sessions/, one module per area."""
