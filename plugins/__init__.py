"""First-party imageapi plugins: one package per feature, registered like any other."""
