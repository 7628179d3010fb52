"""Toy StyleGAN2 pieces with EG3D's names: persistent ``FullyConnectedLayer``, ``MappingNetwork`` and the
tri-plane ``Generator`` backbone (``mapping`` + ``synthesis``)."""

import numpy as np
import torch
from torch_utils import persistence
from torch_utils.ops import bias_act


@persistence.persistent_class
class FullyConnectedLayer(torch.nn.Module):
    def __init__(self, in_features, out_features, bias=True, activation="linear", lr_multiplier=1.0):
        super().__init__()
        self.activation = activation
        self.weight = torch.nn.Parameter(torch.randn([out_features, in_features]) / lr_multiplier)
        self.bias = torch.nn.Parameter(torch.zeros([out_features])) if bias else None
        self.weight_gain = lr_multiplier / np.sqrt(in_features)

    def forward(self, x):
        x = bias_act.apply(x.matmul((self.weight * self.weight_gain).t()))
        if self.bias is not None:
            x = x + self.bias
        return torch.nn.functional.leaky_relu(x, 0.2) if self.activation == "lrelu" else x


@persistence.persistent_class
class MappingNetwork(torch.nn.Module):
    def __init__(self, z_dim, c_dim, w_dim, num_ws, num_layers=2, w_avg_beta=0.998):
        super().__init__()
        self.z_dim, self.c_dim, self.w_dim, self.num_ws = z_dim, c_dim, w_dim, num_ws
        self.embed = FullyConnectedLayer(c_dim, w_dim) if c_dim else None
        dims = [z_dim + (w_dim if c_dim else 0)] + [w_dim] * num_layers
        for i in range(num_layers):
            setattr(self, f"fc{i}", FullyConnectedLayer(dims[i], dims[i + 1], activation="lrelu"))
        self.num_layers = num_layers
        self.register_buffer("w_avg", torch.zeros([w_dim]))

    def forward(self, z, c, truncation_psi=1, truncation_cutoff=None, update_emas=False):
        x = z * (z.square().mean(1, keepdim=True) + 1e-8).rsqrt()
        if self.c_dim:
            y = self.embed(c.to(torch.float32))
            x = torch.cat([x, y * (y.square().mean(1, keepdim=True) + 1e-8).rsqrt()], 1)
        for i in range(self.num_layers):
            x = getattr(self, f"fc{i}")(x)
        x = x.unsqueeze(1).repeat([1, self.num_ws, 1])
        if truncation_psi != 1:
            cutoff = self.num_ws if truncation_cutoff is None else truncation_cutoff
            x[:, :cutoff] = self.w_avg.lerp(x[:, :cutoff], truncation_psi)
        return x


@persistence.persistent_class
class SynthesisNetwork(torch.nn.Module):
    """ws (B, num_ws, w_dim) -> tri-planes (B, img_channels, R, R)."""

    def __init__(self, w_dim, img_resolution, img_channels):
        super().__init__()
        self.img_resolution, self.img_channels, self.num_ws = img_resolution, img_channels, 4
        self.fc = FullyConnectedLayer(w_dim, img_channels * img_resolution * img_resolution)

    def forward(self, ws, update_emas=False, **block_kwargs):
        x = self.fc(ws.mean(1))
        return torch.tanh(x).view(-1, self.img_channels, self.img_resolution, self.img_resolution)


@persistence.persistent_class
class Generator(torch.nn.Module):
    def __init__(self, z_dim, c_dim, w_dim, img_resolution, img_channels, mapping_kwargs={}, **synthesis_kwargs):
        super().__init__()
        self.synthesis = SynthesisNetwork(w_dim, img_resolution, img_channels)
        self.num_ws = self.synthesis.num_ws
        self.mapping = MappingNetwork(z_dim, c_dim, w_dim, self.num_ws, **mapping_kwargs)
