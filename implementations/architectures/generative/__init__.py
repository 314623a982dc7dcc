"""Generative models for 28x28 digits in plain PyTorch, and how their samples are judged.

- vae.py: VAE (Gaussian latent, reparameterisation, Bernoulli decoder), KL and ELBO terms
- gan.py: DCGAN-style generator and spectrally normalised discriminator, non-saturating losses
- unet.py: the small U-Net noise predictor of the diffusion model
- diffusion.py: DDPM (linear / cosine beta schedules, epsilon loss, ancestral sampling) + DDIM
- training.py: seeded training loops and batched sampling for all three
- digit_features.py: digit-recognizer-py's pretrained MNIST CNN (not trained here), the feature
  extractor for the scores
- metrics.py: Fréchet distance / FID, Kynkäänniemi precision and recall, confidence, class entropy
"""
