"""Plain data models. Models import nothing from the rest of the package."""
