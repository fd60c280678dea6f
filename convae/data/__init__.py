"""Images in, as tensors: the datasets and their file formats (IDX, class folders of
pictures, zipped folders), any uploaded picture or drawing made a model input safely,
image grids, and the noise the models learn to remove. Knows nothing of models."""
