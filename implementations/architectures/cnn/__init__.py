"""Convolutional networks in plain PyTorch (no torchvision: it has no CPU build here).

- classifier.py: SmallCNN, a cheap Fashion-MNIST classifier
- resnet.py: BasicBlock, Bottleneck, resnet18/34/50 (torchvision layout), CIFAR-style ResNet
  and its plain twin
- efficientnet.py: MBConv + SE + swish, compound scaling, efficientnet_b0..b3, Lite0 with
  the real ImageNet weights
- imagenet_classes.py: the 1000 class names (fixtures/imagenet_classes.txt)
- training.py: the seeded training loop shared by the experiments
- probing.py: feature maps by module name, translation equivariance, filter statistics
- transfer.py: linear probe / fine-tuning / scratch on few labels
"""
