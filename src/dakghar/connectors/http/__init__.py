"""HTTP provider connectors: shared machinery and one small module per provider."""
