"""What a model does, in numbers and arrays: MSE, PSNR and SSIM, and the references that
need no learning (PCA, classical denoisers and their tuning); a model's layers seen
from inside (activations, filters, latent maps, outliers, the checkerboard)."""
