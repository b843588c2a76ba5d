"""Model loaders, one module per registry kind (see :data:`benchmark.registry.KINDS`)."""
