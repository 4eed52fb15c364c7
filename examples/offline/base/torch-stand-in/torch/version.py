"""Which toolkit this torch was built with (torch.version). The offline base's build rewrites this file with the
HIP it installs (`hipconfig --version`), as PyTorch for ROCm reports the HIP it was built with; here, outside that
image, no HIP is known."""
hip = None
cuda = None
