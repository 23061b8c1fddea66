"""xscreen: X-ray baggage screening with a Skip-GANomaly anomaly detector."""
__version__ = "0.1.0"
