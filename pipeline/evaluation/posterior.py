"""Is z_what used? Posterior health of the what-VAE on a split's real instances.

Per class: the KL of the mask encoder's posterior from the prior (nats, summed over dims), the number of
active latent dims (variance of the posterior mean over instances above 0.01), and the supervised path's
mean L1 to the real mask decoded from the posterior mean vs from z = 0. A collapsed posterior shows as KL
near 0, no active dims and the two L1s equal.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from pipeline.models.affine import box_mask, paint
from pipeline.training_data import PreparedData


@torch.no_grad()
def posterior_health(gan, data: PreparedData, classes: list[str], per_class: int = 256, seed: int = 0) -> dict:
    gen = torch.Generator(device=data.device).manual_seed(seed)
    was_training = gan.training
    gan.eval()
    out = {}
    for c, name in enumerate(classes):
        index = torch.nonzero(data.inst_class == c).flatten()
        if len(index) == 0:
            continue
        index = index[torch.randperm(len(index), generator=gen, device=data.device)[:per_class]]
        batch = data.batch(len(index), gen, index=index)
        onehot = F.one_hot(batch["cls"], gan.n_classes).float()
        mu, logvar = gan.what_vae(batch["mask_real"], onehot)
        kl = (-0.5 * (1 + logvar - mu.square() - logvar.exp())).sum(1)
        what_in = paint(batch["xp_what"], box_mask(batch["theta_real"], gan.what_hw), gan.targets[batch["cls"]])
        l1 = {}
        for key, z in (("posterior_mean", mu), ("z_zero", torch.zeros_like(mu))):
            shape = torch.sigmoid(gan.what(what_in, z, onehot)[0])
            l1[key] = float((shape - batch["mask_real"]).abs().mean())
        out[name] = {"kl_what": round(float(kl.mean()), 4),
                     "active_dims": int((mu.var(0) > 0.01).sum()),
                     "l1_posterior_mean": round(l1["posterior_mean"], 4),
                     "l1_z_zero": round(l1["z_zero"], 4),
                     "instances": len(index)}
    gan.train(was_training)
    return out
