"""Toy implicit 3DMM: FLAME values (B, 206) -> a small code the decoder adds to its features."""

import torch


class IGRModel(torch.nn.Module):
    def __init__(self, feature_dim=206, code_dim=8):
        super().__init__()
        self.net = torch.nn.Linear(feature_dim, code_dim)

    def forward(self, flame):
        return torch.tanh(self.net(flame))
