"""The cpu backend's plan: which layers each oneDNN convolution computes (archc.backends.cpu)."""
