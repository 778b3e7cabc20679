"""Super-resolution, the oracle's image-to-image task: SRResNet and SRGAN at 4x (Ledig et al.,
CVPR 2017), their data, training, Y-channel PSNR/SSIM evaluation and tiled inference."""
