"""Training and competing as a class: a model fitted and measured in one call, step by
step or as a job on a queue of worker processes, saved models, and the class challenge
with its board."""
