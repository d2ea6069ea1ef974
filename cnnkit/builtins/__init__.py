"""cnnkit's built-in plugins, one module per kind, loaded exactly like third-party plugins."""
