"""The neural networks and how they learn: the architectures and their settings, the
fast forward pass, the optimizer and training loop, checkpoints, and the registry of
shipped models. Reads data; never measures beyond its own training loss."""
