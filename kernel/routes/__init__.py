"""The kernel's own HTTP routes; every feature route comes from a plugin's ``routes`` hook."""
